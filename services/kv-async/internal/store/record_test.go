package store

import "testing"

func TestRecordEncoding(t *testing.T) {
	for _, s := range []stored{
		{Record: Record{Key: "k", Value: []byte("value"), Version: Version{Epoch: 3, Seq: 1 << 40}, Time: 1700000000123}, local: 9},
		{Record: Record{Key: "k", Version: Version{Epoch: 1, Seq: 2}, Deleted: true, Time: -1}, local: 1},
		{Record: Record{Key: "k", Value: []byte{}}, local: 0},
	} {
		b := s.encode()
		got, err := decodeStored("k", b)
		if err != nil {
			t.Fatalf("decode %+v: %v", s, err)
		}
		if got.Version != s.Version || got.Deleted != s.Deleted || got.Time != s.Time || got.local != s.local || string(got.Value) != string(s.Value) {
			t.Fatalf("round trip: %+v -> %+v", s, got)
		}
		// Every truncation is an error, never a panic or a wrong header.
		for n := 0; n < len(b)-len(s.Value); n++ {
			if h, err := decodeHeader(b[:n]); err == nil {
				t.Fatalf("truncated to %d bytes: header %+v without error", n, h)
			}
		}
	}
}

func TestVersionOrder(t *testing.T) {
	ordered := []Version{{0, 0}, {0, 1}, {0, 99}, {1, 0}, {1, 5}, {2, 1}}
	for i, a := range ordered {
		for j, b := range ordered {
			if got, want := a.Newer(b), i > j; got != want {
				t.Fatalf("%v.Newer(%v) = %v, want %v", a, b, got, want)
			}
		}
		if v, err := ParseVersion(a.String()); err != nil || v != a {
			t.Fatalf("ParseVersion(%q) = %v, %v", a.String(), v, err)
		}
	}
	for _, bad := range []string{"", "1", "a.b", "1.-2", "1.2.3"} {
		if _, err := ParseVersion(bad); err == nil {
			t.Fatalf("ParseVersion(%q) succeeded", bad)
		}
	}
}
