package store

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Size counts a partition's flushed data, and little of any other's.
func TestSizeOfAPartition(t *testing.T) {
	s := openAt(t, vfs.NewMem(), "db", Options{})
	value := bytes.Repeat([]byte("v"), 1<<10)
	for i := range 2048 {
		if err := s.Update(func(tx *Tx) error { return tx.Set(1, []byte(fmt.Sprintf("k%05d", i)), value) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Update(func(tx *Tx) error { return tx.Set(3, []byte("k"), value) }); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	one, err := s.Size(1)
	if err != nil {
		t.Fatal(err)
	}
	// 2 MiB of values; Pebble compresses them, so expect far less, but
	// some: and far more than the one-record partition 3.
	three, err := s.Size(3)
	if err != nil {
		t.Fatal(err)
	}
	two, err := s.Size(2)
	if err != nil {
		t.Fatal(err)
	}
	// Estimates: a table spanning several partitions counts in part for
	// each, so an empty partition between full ones reads a little.
	if one < 50*max(two, three, 1) {
		t.Errorf("sizes: partition 1 (2,048 records) %d, 2 (none) %d, 3 (one) %d", one, two, three)
	}
	if _, err := s.Size(-1); err == nil {
		t.Error("Size(-1) gave no error")
	}
}
