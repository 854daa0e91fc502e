package store

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestDropIfDropsOnlyWhatItsConditionAllows(t *testing.T) {
	s := openAt(t, vfs.NewMem(), "db", Options{})
	set(t, s, 1, "k", "v")
	set(t, s, 2, "k", "v")
	if dropped, err := s.DropIf(1, func() bool { return false }); err != nil || dropped {
		t.Fatalf("DropIf with a false condition: %v, %v", dropped, err)
	}
	wantValue(t, s, 1, "k", "v", true)
	if dropped, err := s.DropIf(3, nil); err != nil || dropped {
		t.Fatalf("DropIf of an empty partition: %v, %v; want false", dropped, err)
	}
	if dropped, err := s.DropIf(1, func() bool { return true }); err != nil || !dropped {
		t.Fatalf("DropIf: %v, %v; want true", dropped, err)
	}
	wantValue(t, s, 1, "k", "", false)
	wantValue(t, s, 2, "k", "v", true)
}
