package store

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	kit "clusterkit.dev/services/kit/store"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Keys written over and over leave dead entries in the index, which is
// compacted once they are most of it: the index stays in proportion to
// the keys, and says the same.
func TestTheIndexStaysInProportionToTheKeys(t *testing.T) {
	fs := vfs.NewMem()
	s := open(t, fs, "kv", Options{})
	m := model{}
	for i := range 5000 {
		rec, _ := write(t, s, 0, "k"+strconv.Itoa(i%20), strconv.Itoa(i), i%9 == 4)
		if rec.Key != "" { // "" for a delete of a key already deleted
			m[pk{0, rec.Key}] = rec
		}
		if n := len(s.index.parts[0].entries); n > 2*compactAt+20 {
			t.Fatalf("after %d writes of 20 keys the index holds %d entries", i+1, n)
		}
	}
	check(t, s, m)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check(t, open(t, fs, "kv", Options{}), m)
}

// A store written before the index moved to memory kept it in the
// partitions, under 'h' and 'i': Open rebuilds the index from the records
// and deletes those keys.
func TestOpenDeletesAnOldStoresIndex(t *testing.T) {
	fs := vfs.NewMem()
	s := open(t, fs, "kv", Options{})
	m := model{}
	for i := range 3000 {
		p := i % 3
		rec, _ := write(t, s, p, "k"+strconv.Itoa(i%1500), "v", false)
		m[pk{p, rec.Key}] = rec
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// The old layout's keys, beside the records.
	kv, err := kit.Open("kv", kit.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	old := 0
	for p := range 3 {
		err := kv.Update(func(tx *kit.Tx) error {
			if err := tx.Set(p, []byte{'h'}, u64(99)); err != nil {
				return err
			}
			for i := range 1200 {
				if err := tx.Set(p, append([]byte{'i'}, u64(uint64(i))...), []byte("12345678key")); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		old += 1201
	}
	if err := kv.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, fs, "kv", Options{})
	check(t, s, m)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	kv, err = kit.Open("kv", kit.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	for p := range 3 {
		left := 0
		_, err := kv.Scan(p, []byte{'f'}, 0, func(k, _ []byte) error { left++; return nil })
		if err != nil {
			t.Fatal(err)
		}
		if left != 0 {
			t.Fatalf("partition %d still holds %d keys of the old index (of %d written)", p, left, old/3)
		}
	}
}

// A record Open cannot decode fails Open, naming the key, rather than
// leave the record out of the change log.
func TestOpenRefusesARecordItCannotRead(t *testing.T) {
	fs := vfs.NewMem()
	kv, err := kit.Open("kv", kit.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Update(func(tx *kit.Tx) error { return tx.Set(2, dataKey("bad"), []byte{0, 0xff}) }); err != nil {
		t.Fatal(err)
	}
	if err := kv.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open("kv", Options{Engine: kit.Options{FS: fs}})
	if err == nil {
		_ = s.Close()
		t.Fatal("Open read a store with a corrupt record")
	}
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `"bad"`) {
		t.Fatalf("Open: %v; want ErrCorrupt naming the key", err)
	}
}

// The bound of the positions is stored ahead of them: a restart goes on
// above every position handed out, skipping at most positionSlack.
func TestARestartSkipsAtMostTheSlack(t *testing.T) {
	fs := vfs.NewMem()
	s := open(t, fs, "kv", Options{})
	var last uint64
	for round := range 3 {
		for i := range 100 {
			rec, _ := write(t, s, i%4, "k"+strconv.Itoa(i), strconv.Itoa(round), false)
			last = rec.Version.Seq
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = open(t, fs, "kv", Options{})
		rec, _ := write(t, s, 0, "probe", "x", false)
		if rec.Version.Seq <= last || rec.Version.Seq > last+positionSlack+1 {
			t.Fatalf("round %d: after position %d the restarted store hands out %d; want above it by at most %d", round, last, rec.Version.Seq, positionSlack+1)
		}
	}
}
