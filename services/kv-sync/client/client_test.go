package client

import (
	"testing"
)

func TestVersionOrder(t *testing.T) {
	ordered := []Version{{}, {0, 1}, {1, 0}, {1, 7}, {2, 1}}
	for i, a := range ordered {
		for j, b := range ordered {
			if got := a.Less(b); got != (i < j) {
				t.Errorf("%v.Less(%v) = %v", a, b, got)
			}
		}
	}
	if s := (Version{Counter: 4, Writer: 9}).String(); s != "4.9" {
		t.Errorf("String() = %q", s)
	}
}

func TestNewestAndAgree(t *testing.T) {
	absent := record{}
	old := record{value: "a", version: Version{1, 5}, found: true}
	cur := record{value: "b", version: Version{2, 1}, found: true}
	gone := record{version: Version{3, 1}, deleted: true, found: true}

	if got := newest([]record{absent, absent}); got.found {
		t.Errorf("newest of nothing: %+v", got)
	}
	if got := newest([]record{old, cur, absent}); got != cur {
		t.Errorf("newest: %+v, want %+v", got, cur)
	}
	if got := newest([]record{cur, gone}); got != gone {
		t.Errorf("a newer delete must win: %+v", got)
	}
	// Answers that differ, or a majority that lacks the key, need a write
	// back before the read returns.
	if agree([]record{cur, old}, cur.version) || agree([]record{cur, absent}, cur.version) {
		t.Error("differing answers reported as agreeing")
	}
	if !agree([]record{cur, cur}, cur.version) {
		t.Error("equal answers reported as differing")
	}
}
