package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"clusterkit.dev/services/kv-async/internal/store"
)

// TestAnswersMatchEncodingJSON checks that the hand-written answers are
// byte for byte what encoding/json's Encoder writes.
func TestAnswersMatchEncodingJSON(t *testing.T) {
	str := rapid.OneOf(rapid.String(), rapid.StringMatching(`[a-z0-9<>&"\\\n\x00é\x{2028}]{0,12}`),
		rapid.Custom(func(t *rapid.T) string { return string(rapid.SliceOf(rapid.Byte()).Draw(t, "b")) }))
	encode := func(t *rapid.T, v any) []byte {
		var buf bytes.Buffer
		if err := json.NewEncoder(&buf).Encode(v); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	rapid.Check(t, func(t *rapid.T) {
		p := rapid.IntRange(0, 1<<20).Draw(t, "partition")
		v := store.Version{Epoch: rapid.Uint64().Draw(t, "epoch"), Seq: rapid.Uint64().Draw(t, "seq")}
		if got := string(v.Append(nil)); got != v.String() {
			t.Fatalf("version %v: %s", v, got)
		}
		w := WriteResponse{Key: str.Draw(t, "key"), Partition: p, Version: v.String()}
		if got, want := w.appendJSON(nil), encode(t, w); !bytes.Equal(got, want) {
			t.Fatalf("write answer %s, encoding/json %s", got, want)
		}
		g := GetResponse{Key: str.Draw(t, "key"), Value: str.Draw(t, "value"), Partition: p, Version: v.String()}
		if got, want := g.appendJSON(nil), encode(t, g); !bytes.Equal(got, want) {
			t.Fatalf("get answer %s, encoding/json %s", got, want)
		}
		d := DeleteResponse{Key: str.Draw(t, "key"), Partition: p, Deleted: rapid.Bool().Draw(t, "deleted")}
		if d.Deleted {
			d.Version = v.String()
		}
		if got, want := d.appendJSON(nil), encode(t, d); !bytes.Equal(got, want) {
			t.Fatalf("delete answer %s, encoding/json %s", got, want)
		}
	})
}

// TestRequestBodiesDecodeLikeEncodingJSON checks that set and delete bodies
// read the same whether they take the plain path or encoding/json.
func TestRequestBodiesDecodeLikeEncodingJSON(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		body := rapid.OneOf(
			rapid.StringMatching(`\s?\{\s?("(key|value|Key|other)"\s?:\s?("[a-zé\\"]{0,5}"|[0-9]|null)\s?,?\s?){0,3}\}\s?x?`),
			rapid.Custom(func(t *rapid.T) string {
				k, _ := json.Marshal(rapid.String().Draw(t, "key"))
				v, _ := json.Marshal(rapid.String().Draw(t, "value"))
				return `{"key":` + string(k) + `,"value":` + string(v) + `}`
			}),
		).Draw(t, "body")
		req := httptest.NewRequest(http.MethodPost, "/kv/set", strings.NewReader(body))
		key, value, err := decodeSet(httptest.NewRecorder(), req)

		var want setRequest
		werr := decodeJSON([]byte(body), &want)
		switch {
		case werr != nil || want.Key == nil || want.Value == nil:
			if err == nil {
				t.Fatalf("%s: decoded as %q=%q, encoding/json: %v %+v", body, key, value, werr, want)
			}
		case err != nil:
			t.Fatalf("%s: %v, encoding/json reads %q=%q", body, err, *want.Key, *want.Value)
		case key != *want.Key || string(value) != *want.Value:
			t.Fatalf("%s: decoded as %q=%q, encoding/json reads %q=%q", body, key, value, *want.Key, *want.Value)
		}

		req = httptest.NewRequest(http.MethodPost, "/kv/delete", strings.NewReader(body))
		key, err = decodeDelete(httptest.NewRecorder(), req)
		var wantDel deleteRequest
		werr = decodeJSON([]byte(body), &wantDel)
		switch {
		case werr != nil || wantDel.Key == nil:
			if err == nil {
				t.Fatalf("%s: delete decoded as %q, encoding/json: %v", body, key, werr)
			}
		case err != nil || key != *wantDel.Key:
			t.Fatalf("%s: delete decoded as %q (%v), encoding/json reads %q", body, key, err, *wantDel.Key)
		}
	})
}
