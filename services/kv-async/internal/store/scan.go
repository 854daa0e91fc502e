package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Entry is one entry of a partition's index.
type Entry struct {
	// Position is the entry's position in the index.
	Position uint64
	// At is when the record arrived on this node, in Unix milliseconds.
	At int64
	// Record is the entry's record; with Scan's records false, only its
	// key is set.
	Record Record
}

// scanPage is how many index entries one read of the shared store covers:
// a long scan proceeds by many short ones.
const scanPage = 256

// Scan calls fn with partition p's index entries after position after and
// up to position upto (Synced for the durable ones, math.MaxUint64 for
// all), in order, until fn returns false. With records false the entries
// carry only their key. An entry whose key changed again since the entry
// was read is left out: the key's newer entry follows, or is beyond upto.
func (s *Store) Scan(p int, after, upto uint64, records bool, fn func(e *Entry) bool) error {
	for after < upto {
		n, last, err := s.scanPage(p, after, upto, records, fn)
		if errors.Is(err, errStop) {
			return nil
		}
		if err != nil || n < scanPage {
			return err
		}
		after = last
	}
	return nil
}

// scanPage scans up to scanPage entries after position after; it returns
// how many it read and the position of the last one.
func (s *Store) scanPage(p int, after, upto uint64, records bool, fn func(e *Entry) bool) (n int, last uint64, err error) {
	n, err = s.kv.Scan(p, indexKey(after), scanPage, func(k, v []byte) error {
		if len(k) != 9 || k[0] != prefixIndex || len(v) < 8 {
			return fmt.Errorf("partition %d index entry %q: %w", p, k, ErrCorrupt)
		}
		e := Entry{Position: binary.BigEndian.Uint64(k[1:]), At: int64(binary.BigEndian.Uint64(v)), Record: Record{Key: string(v[8:])}}
		last = e.Position
		if e.Position > upto {
			return errStop
		}
		if records {
			r, found, err := s.kv.Get(p, dataKey(e.Record.Key))
			if err != nil {
				return err
			}
			if !found {
				return nil // the partition was dropped meanwhile
			}
			st, err := decodeStored(e.Record.Key, r)
			if err != nil {
				return fmt.Errorf("partition %d: %w", p, err)
			}
			if st.local != e.Position {
				return nil // written again since, at a later position
			}
			e.Record = st.Record
		}
		if !fn(&e) {
			return errStop
		}
		return nil
	})
	return n, last, err
}

// Snapshot is what a copy of a partition needs: its head and cursors, and
// its records up to the head, every one durable.
type Snapshot struct {
	s *Store
	p int
	// Head is the last position of the index at the snapshot: the copy
	// holds this node's index up to it.
	Head uint64
	// Cursors are the partition's cursors at the snapshot: the copy holds
	// what they say, too.
	Cursors []Cursor
}

// Snapshot reads partition p's cursors and head, then makes every change
// before durable. The records of the snapshot (Each) are those up to the
// head, as the store holds them when they are read: a key written since
// is left out, as its newer record is beyond the head.
func (s *Store) Snapshot(p int) (*Snapshot, error) {
	cursors, err := s.Cursors(p)
	if err != nil {
		return nil, err
	}
	// Read after the cursors: the records a cursor covers were stored
	// with it, at positions up to the head.
	head, err := s.Head(p)
	if err != nil {
		return nil, err
	}
	if err := s.Sync(); err != nil {
		return nil, err
	}
	return &Snapshot{s: s, p: p, Head: head, Cursors: cursors}, nil
}

// Each calls fn with the snapshot's index entries after position after,
// with their records, in order, until fn returns false.
func (sn *Snapshot) Each(after uint64, fn func(e *Entry) bool) error {
	return sn.s.Scan(sn.p, after, sn.Head, true, fn)
}

// All is the upto of a Scan of every entry, durable or not.
const All = math.MaxUint64
