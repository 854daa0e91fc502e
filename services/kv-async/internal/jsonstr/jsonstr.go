// Package jsonstr writes and reads the flat JSON objects of the kv-async
// API (string and integer members) without reflection. It writes exactly
// what encoding/json writes, and reads only the plainest form of an
// object; for anything else it says so, and the caller uses encoding/json,
// so that both paths always agree.
package jsonstr

import (
	"unicode/utf8"
)

const hex = "0123456789abcdef"

// AppendString appends s to b as a JSON string, escaped as encoding/json
// escapes it: the HTML-sensitive <, > and & too, invalid UTF-8 as
// \ufffd, and U+2028 and U+2029.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Member is one member of an object read by ParseObject: Value holds a
// string's bytes (String true) or an integer's digits.
type Member struct {
	Name   []byte
	Value  []byte
	String bool
}

// ParseObject reads b as a JSON object whose members are strings without
// escape sequences (valid UTF-8, no control characters) or integers,
// separated by optional whitespace, and calls fn with each member in
// order; Name and Value alias b. It returns false, having perhaps called
// fn already, when b is anything else (a different form, or not JSON), or
// when fn returns false: the caller then decodes b with encoding/json.
func ParseObject(b []byte, fn func(m Member) bool) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		var m Member
		var ok bool
		if m.Name, i, ok = plainString(b, i); !ok {
			return false
		}
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == '"' {
			m.String = true
			if m.Value, i, ok = plainString(b, i); !ok {
				return false
			}
		} else if m.Value, i, ok = integer(b, i); !ok {
			return false
		}
		if !fn(m) {
			return false
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return skipSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainString reads the string starting at b[i] ('"'): it must hold no
// backslash and no control character, and be valid UTF-8.
func plainString(b []byte, i int) (s []byte, next int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	i++
	start := i
	ascii := true
	for ; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '"':
			s = b[start:i]
			return s, i + 1, ascii || utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return nil, 0, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, 0, false
}

// integer reads an integer (an optional minus, then digits without a
// leading zero) starting at b[i].
func integer(b []byte, i int) (v []byte, next int, ok bool) {
	start := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	switch {
	case i == digits:
		return nil, 0, false
	case b[digits] == '0' && i-digits > 1:
		return nil, 0, false
	case i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E'):
		return nil, 0, false // a number, but not an integer
	}
	return b[start:i], i, true
}
