package jsonstr

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// anyString draws strings of arbitrary bytes, often ASCII, sometimes with
// the characters JSON must escape, multi-byte runes, or invalid UTF-8.
func anyString() *rapid.Generator[string] {
	return rapid.OneOf(
		rapid.StringMatching(`[a-zA-Z0-9:_\-. ]{0,20}`),
		rapid.String(),
		rapid.Custom(func(t *rapid.T) string {
			return string(rapid.SliceOf(rapid.Byte()).Draw(t, "bytes"))
		}),
		rapid.Custom(func(t *rapid.T) string {
			parts := rapid.SliceOf(rapid.SampledFrom([]string{
				"a", `"`, `\`, "<", ">", "&", "\n", "\r", "\t", "\x00", "\x1f", "\x7f",
				"é", "日本", "\u2028", "\u2029", "\xff", "\xc3", "\xed\xa0\x80", "😀",
			})).Draw(t, "parts")
			return strings.Join(parts, "")
		}),
	)
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := anyString().Draw(t, "s")
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendString([]byte("prefix"), s); !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Fatalf("AppendString(%q) = %s, encoding/json writes %s", s, got[len("prefix"):], want)
		}
	})
}

// member is one generated object member: a string or an integer.
type member struct {
	name   string
	str    string
	num    int64
	isText bool
}

func TestParseObjectAgreesWithEncodingJSON(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		members := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) member {
			m := member{name: anyString().Draw(t, "name"), isText: rapid.Bool().Draw(t, "isText")}
			if m.isText {
				m.str = anyString().Draw(t, "str")
			} else {
				m.num = rapid.Int64().Draw(t, "num")
			}
			return m
		}), 0, 5).Draw(t, "members")
		space := rapid.SampledFrom([]string{"", " ", "\n\t", "\r\n  "})
		var b []byte
		b = append(b, space.Draw(t, "sp")...)
		b = append(b, '{')
		plain := true
		for i, m := range members {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, space.Draw(t, "sp")...)
			name, _ := json.Marshal(m.name)
			b = append(b, name...)
			b = append(b, space.Draw(t, "sp")...)
			b = append(b, ':')
			b = append(b, space.Draw(t, "sp")...)
			if m.isText {
				v, _ := json.Marshal(m.str)
				b = append(b, v...)
				plain = plain && isPlain(v)
			} else {
				b = strconv.AppendInt(b, m.num, 10)
			}
			plain = plain && isPlain(name)
			b = append(b, space.Draw(t, "sp")...)
		}
		b = append(b, '}')
		b = append(b, space.Draw(t, "sp")...)

		var got []member
		ok := ParseObject(b, func(m Member) bool {
			g := member{name: string(m.Name), isText: m.String}
			if m.String {
				g.str = string(m.Value)
			} else {
				n, err := strconv.ParseInt(string(m.Value), 10, 64)
				if err != nil {
					t.Fatalf("integer %q: %v", m.Value, err)
				}
				g.num = n
			}
			got = append(got, g)
			return true
		})
		if plain && !ok {
			t.Fatalf("ParseObject refused the plain object %s", b)
		}
		if !ok {
			return
		}
		if len(got) != len(members) {
			t.Fatalf("%s: %d members, want %d", b, len(got), len(members))
		}
		for i := range members {
			if got[i] != members[i] {
				t.Fatalf("%s: member %d = %+v, want %+v", b, i, got[i], members[i])
			}
		}
	})
}

// isPlain reports whether an encoded JSON string has no escape sequence.
func isPlain(v []byte) bool { return !bytes.ContainsRune(v, '\\') }

func TestParseObjectAcceptsOnlyWhatEncodingJSONReadsTheSame(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := []byte(rapid.OneOf(
			rapid.StringMatching(`\s?\{\s?("[a-z"\\]{0,4}"\s?:\s?("[a-z\\"é]{0,4}"|-?[0-9.e]{1,4}|true|null|\{\})\s?,?\s?){0,3}\}?\s?.?`),
			rapid.Custom(func(t *rapid.T) string { return string(rapid.SliceOf(rapid.Byte()).Draw(t, "bytes")) }),
		).Draw(t, "input"))
		var names, values []string
		if !ParseObject(b, func(m Member) bool {
			names = append(names, string(m.Name))
			values = append(values, string(m.Value))
			return true
		}) {
			return
		}
		var decoded map[string]json.RawMessage
		if err := json.Unmarshal(b, &decoded); err != nil {
			t.Fatalf("ParseObject accepted %q, which encoding/json refuses: %v", b, err)
		}
		for i, name := range names {
			raw, found := decoded[name]
			if !found {
				t.Fatalf("%q: member %q missing from encoding/json's reading", b, name)
			}
			var v any
			if err := json.Unmarshal(raw, &v); err != nil {
				t.Fatal(err)
			}
			if s, isString := v.(string); isString && s != values[i] && !duplicate(names, name) {
				t.Fatalf("%q: member %q = %q, encoding/json reads %q", b, name, values[i], s)
			}
		}
	})
}

func duplicate(names []string, name string) bool {
	n := 0
	for _, x := range names {
		if x == name {
			n++
		}
	}
	return n > 1
}

func TestParseObjectRefusals(t *testing.T) {
	for _, in := range []string{
		``, `{`, `[]`, `{"a":"b"`, `{"a":"b",}`, `{"a" "b"}`, `{"a":"b"} x`, `{"a":"\n"}`,
		`{"a":"b\"c"}`, "{\"a\":\"\x01\"}", "{\"a\":\"\xff\"}", `{"a":01}`, `{"a":1.5}`, `{"a":1e3}`,
		`{"a":-}`, `{"a":true}`, `{"a":null}`, `{"a":{}}`, `{a:"b"}`,
	} {
		if ParseObject([]byte(in), func(Member) bool { return true }) {
			t.Errorf("ParseObject accepted %q", in)
		}
	}
	for _, in := range []string{`{}`, ` { } `, `{"a":"b"}`, `{"a":-12,"b":"é"}`} {
		if !ParseObject([]byte(in), func(Member) bool { return true }) {
			t.Errorf("ParseObject refused %q", in)
		}
	}
	if ParseObject([]byte(`{"a":"b"}`), func(Member) bool { return false }) {
		t.Error("ParseObject succeeded although fn refused a member")
	}
}
