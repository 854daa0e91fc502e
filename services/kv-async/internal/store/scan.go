package store

import (
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

// scanPage is how many index entries a scan copies out of the index at a
// time.
const scanPage = 256

// Scan calls fn with partition p's index entries after position after and
// up to position upto (Synced for the durable ones, All for every one), in
// order, until fn returns false. With records false the entries carry
// only their key. With records true, an entry whose key changed again
// since the entry was read is left out (the key's newer entry follows, or
// is beyond upto), and with no SyncWindow every record returned is
// durable.
func (s *Store) Scan(p int, after, upto uint64, records bool, fn func(e *Entry) bool) error {
	var page []logEntry
	for after < upto {
		if s.closed.Load() {
			return ErrClosed
		}
		page = s.index.page(page[:0], p, after, upto, scanPage)
		for _, le := range page {
			e := Entry{Position: le.pos, At: le.at, Record: Record{Key: le.key}}
			if records {
				r, found, err := s.kv.Get(p, dataKey(le.key))
				if err != nil {
					return err
				}
				if !found {
					continue // the partition was dropped meanwhile
				}
				st, err := decodeStored(le.key, r)
				if err != nil {
					return fmt.Errorf("partition %d: %w", p, err)
				}
				if st.local != e.Position {
					continue // written again since, at a later position
				}
				e.Record = st.Record
			}
			if !fn(&e) {
				return nil
			}
		}
		if len(page) < scanPage {
			return nil
		}
		after = page[len(page)-1].pos
	}
	return nil
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
