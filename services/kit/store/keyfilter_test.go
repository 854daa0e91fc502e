package store

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// pebbleReads counts the point reads that reach Pebble.
func pebbleReads(s *Store) *int {
	n := new(int)
	s.betweenReadAndFill = func() { *n++ }
	return n
}

// TestAbsentKeysAreNotReadFromPebble: a read of a key the store never
// held, or held in a partition dropped since, is answered by the key
// filter, but for its few false positives; with the filter off, every
// read of an absent key seeks Pebble.
func TestAbsentKeysAreNotReadFromPebble(t *testing.T) {
	const absent = 2000
	for _, size := range []int64{0, -1} {
		t.Run(fmt.Sprintf("KeyFilterSize=%d", size), func(t *testing.T) {
			s := openAt(t, vfs.NewMem(), "kv", Options{KeyFilterSize: size, ReadCacheSize: -1})
			for i := range 100 {
				set(t, s, 0, fmt.Sprint("held-", i), "v")
			}
			reads := pebbleReads(s)
			for i := range absent {
				wantValue(t, s, 0, fmt.Sprint("new-", i), "", false)
			}
			if size < 0 {
				if *reads != absent {
					t.Fatalf("%d of %d reads of absent keys reached Pebble with the filter off", *reads, absent)
				}
				return
			}
			// About 1% false positives.
			if *reads > absent/20 {
				t.Fatalf("%d of %d reads of absent keys reached Pebble", *reads, absent)
			}
			wantValue(t, s, 0, "held-7", "v", true)
			if err := s.Update(func(tx *Tx) error { return tx.DropPartition(0) }); err != nil {
				t.Fatal(err)
			}
			*reads = 0
			for i := range 100 {
				wantValue(t, s, 0, fmt.Sprint("held-", i), "", false)
			}
			if *reads > 10 {
				t.Fatalf("%d of 100 reads of a dropped partition's keys reached Pebble", *reads)
			}
		})
	}
}

// TestAPartitionPastTheBudgetIsReadFromPebble: the filters stay within
// KeyFilterSize; a partition whose filter would not fit is read from
// Pebble, and nothing it holds is missed.
func TestAPartitionPastTheBudgetIsReadFromPebble(t *testing.T) {
	s := openAt(t, vfs.NewMem(), "kv", Options{KeyFilterSize: 4096, ReadCacheSize: -1})
	const keys = 3000 // past the 2 KiB first filter's 1,638 keys
	for p := range 2 {
		for i := 0; i < keys; i += 100 {
			err := s.Update(func(tx *Tx) error {
				for j := i; j < i+100; j++ {
					if err := tx.Set(p, fmt.Append(nil, "k-", j), []byte("v")); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if s.keys.size > 4096 {
		t.Fatalf("the filters take %d bytes, over the budget of 4096", s.keys.size)
	}
	if !s.keys.parts[0].unfiltered && !s.keys.parts[1].unfiltered {
		t.Fatal("no partition went past the budget")
	}
	for p := range 2 {
		for i := range keys {
			wantValue(t, s, p, fmt.Sprint("k-", i), "v", true)
		}
	}
}
