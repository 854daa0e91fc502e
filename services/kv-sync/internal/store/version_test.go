package store

import "testing"

func TestVersionOrder(t *testing.T) {
	ordered := []Version{{}, {0, 1}, {1, 0}, {1, 1}, {1, 9}, {2, 1}}
	for i, a := range ordered {
		for j, b := range ordered {
			if got, want := a.Compare(b), cmpInt(i, j); got != want {
				t.Errorf("%v.Compare(%v) = %d, want %d", a, b, got, want)
			}
		}
	}
	if s := (Version{3, 14}).String(); s != "3.14" {
		t.Errorf("String() = %q", s)
	}
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
