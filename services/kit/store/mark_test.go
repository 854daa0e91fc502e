package store

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// setMarked writes key=value in partition p in an update marked m.
func setMarked(t testing.TB, s *Store, p int, key, value string, m uint64) {
	t.Helper()
	err := s.Update(func(tx *Tx) error {
		tx.Mark(m)
		return tx.Set(p, []byte(key), []byte(value))
	})
	if err != nil {
		t.Fatalf("set %d/%s: %v", p, key, err)
	}
}

// What Synced reports durable survives a power cut, whatever the
// durability: every update marked at or below it is there after the cut.
func TestSyncedMarksSurviveAPowerCut(t *testing.T) {
	for _, d := range []Durability{Synced, Windowed, NoSync} {
		t.Run(d.String(), func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			// A window longer than the test: only Sync makes writes durable.
			s := openAt(t, fs, "db", Options{Durability: d, SyncWindow: 1 << 40, MemTableSize: 256 << 10})
			if got := s.Synced(); got != 0 {
				t.Fatalf("Synced of a new store = %d, want 0", got)
			}
			for i := 1; i <= 100; i++ {
				setMarked(t, s, 0, fmt.Sprintf("k%03d", i), "v", uint64(i))
			}
			switch got := s.Synced(); d {
			case Synced:
				if got != 100 {
					t.Fatalf("%v: Synced = %d after 100 updates, want 100", d, got)
				}
			default:
				if got != 0 {
					t.Fatalf("%v, nothing synced yet: Synced = %d, want 0", d, got)
				}
			}
			if err := s.Sync(); err != nil {
				t.Fatal(err)
			}
			if got := s.Synced(); got != 100 {
				t.Fatalf("Synced = %d after Sync, want 100", got)
			}
			// An update without a mark carries the last one.
			set(t, s, 0, "unmarked", "v")
			for i := 101; i <= 300; i++ {
				setMarked(t, s, 0, fmt.Sprintf("k%03d", i), "v", uint64(i))
			}
			durable := s.Synced()
			after := openAt(t, cut(fs, 0, 1), "db", Options{})
			for i := 1; i <= int(durable); i++ {
				wantValue(t, after, 0, fmt.Sprintf("k%03d", i), "v", true)
			}
			if d != Synced {
				// Nothing after the Sync was fsynced: a cut that keeps
				// no unsynced byte loses every one of them.
				if durable != 100 {
					t.Fatalf("%v: Synced = %d with no fsync since Sync, want 100", d, durable)
				}
				wantValue(t, after, 0, "k101", "", false)
			}
		})
	}
}

// The window's own fsyncs raise the mark.
func TestTheWindowRaisesTheSyncedMark(t *testing.T) {
	s := openAt(t, vfs.NewMem(), "db", Options{Durability: Windowed, SyncWindow: 2e6})
	setMarked(t, s, 0, "k", "v", 7)
	// A second update a window later waits for an fsync covering the
	// first, if the loop has not made one already.
	for s.Synced() < 7 {
		setMarked(t, s, 0, "k", "v", 7)
	}
	if got := s.Synced(); got != 7 {
		t.Fatalf("Synced = %d, want 7", got)
	}
}
