// Package records keeps versioned key-value records on the shared store
// (clusterkit.dev/services/kit/store): every key's latest write, each
// with its version, and every delete kept as a tombstone, one store
// partition per cluster partition. A partition can be scanned and sent to
// another node, which merges it by version: the newer write of a key wins,
// whatever order writes, copies and replicas arrive in.
//
// What a version means is the service's (its type V): records needs only
// its order and its two numbers.
package records

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"clusterkit.dev/services/kit/store"
)

// Version is what records needs of a service's version type.
type Version[V any] interface {
	comparable
	// Less reports whether the version is older than o.
	Less(o V) bool
	// Pair returns the version's two numbers, most significant first:
	// versions must be ordered as their pairs are.
	Pair() (hi, lo uint64)
}

// Record is one key's latest write: its value, or a tombstone when the key
// was deleted. Tombstones are kept so that a delete replaces older values
// when partitions are merged.
type Record[V Version[V]] struct {
	Key     string
	Value   []byte
	Version V
	Deleted bool
}

// Entry is a Record and the partition it belongs to.
type Entry[V Version[V]] struct {
	Partition int
	Record[V]
}

// Store is a node's record store. Its methods are safe for concurrent use.
type Store[V Version[V]] struct {
	kv       *store.Store
	fromPair func(hi, lo uint64) V
	trackLo  bool
	openLo   uint64 // the greatest lo stored when the store was opened
	maxLo    uint64 // the greatest lo stored; written under the store's Update
}

// Options tune a Store.
type Options struct {
	// Store configures the store underneath.
	Store store.Options
	// TrackMaxLo keeps the greatest second number (lo) of the versions
	// stored, for MaxLo: one more small write per write that raises it.
	TrackMaxLo bool
}

// The metadata entry of the greatest lo.
const metaMaxLo = "records.max-lo"

// Open opens (creating if needed) the store in directory dir. fromPair
// makes a V of its two numbers.
func Open[V Version[V]](dir string, opts Options, fromPair func(hi, lo uint64) V) (*Store[V], error) {
	kv, err := store.Open(dir, opts.Store)
	if err != nil {
		return nil, err
	}
	s := &Store[V]{kv: kv, fromPair: fromPair, trackLo: opts.TrackMaxLo}
	if v, found, err := kv.Meta(metaMaxLo); err != nil || (found && len(v) != 8) {
		_ = kv.Close()
		return nil, fmt.Errorf("records: open %s: read %s: %d bytes, %w", dir, metaMaxLo, len(v), err)
	} else if found {
		s.maxLo = binary.BigEndian.Uint64(v)
		s.openLo = s.maxLo
	}
	return s, nil
}

// HadData reports whether the store held records when it was opened: the
// node is restarting rather than starting afresh.
func (s *Store[V]) HadData() bool { return s.kv.HadData() }

// MaxLo returns the greatest second number of the versions stored when
// the store was opened, if Options.TrackMaxLo, so that a node that numbers
// writes with a clock never reuses a number after a restart, even if its
// clock stepped back.
func (s *Store[V]) MaxLo() uint64 { return s.openLo }

// Close closes the store. Later calls return store.ErrClosed.
func (s *Store[V]) Close() error { return s.kv.Close() }

// Get returns key's record in partition p, tombstones included; found is
// false when the key was never written (or its partition was dropped).
// It never returns a write that a crash could take back.
func (s *Store[V]) Get(p int, key string) (r Record[V], found bool, err error) {
	v, found, err := s.kv.Get(p, []byte(key))
	if err != nil || !found {
		return Record[V]{}, false, err
	}
	r, err = s.decode(key, v)
	return r, err == nil, err
}

// Write stores r in partition p unless the key already holds a version at
// least as new, and returns the version the key holds afterwards: r's when
// it was stored, the newer one otherwise. It returns once r is durable.
func (s *Store[V]) Write(p int, r Record[V]) (V, error) {
	held := make([]V, 1)
	_, err := s.write([]Entry[V]{{Partition: p, Record: r}}, held)
	return held[0], err
}

// Merge stores each entry whose version is newer than the stored one and
// returns how many keys it stored. It returns once they are durable.
func (s *Store[V]) Merge(entries []Entry[V]) (int, error) {
	if len(entries) == 0 {
		return 0, nil
	}
	return s.write(entries, nil)
}

// pkey names a key in a partition.
type pkey struct {
	partition int
	key       string
}

// write stores the entries newer than what their keys hold, the later of
// two entries of one key counting the earlier, in one update, and returns
// how many keys it stored. If held is not nil, it receives the version
// each key holds afterwards.
func (s *Store[V]) write(entries []Entry[V], held []V) (int, error) {
	stored := 0
	err := s.kv.Update(func(tx *store.Tx) error {
		stored = 0
		var taken map[pkey]V // the keys this update writes
		if len(entries) > 1 {
			taken = make(map[pkey]V, len(entries))
		}
		maxLo := s.maxLo
		var buf []byte
		for i := range entries {
			e := &entries[i]
			k := pkey{e.Partition, e.Key}
			cur, seen := taken[k]
			if !seen {
				v, found, err := tx.Get(e.Partition, []byte(e.Key))
				if err != nil {
					return err
				}
				if found {
					if cur, err = s.storedVersion(e.Key, v); err != nil {
						return err
					}
				}
			}
			if cur.Less(e.Version) {
				cur = e.Version
				if e.Deleted {
					e.Value = nil
				}
				buf = appendStored(buf[:0], &e.Record)
				if err := tx.Set(e.Partition, []byte(e.Key), buf); err != nil {
					return err
				}
				if !seen {
					stored++
				}
				if taken != nil {
					taken[k] = cur
				}
				_, lo := cur.Pair()
				maxLo = max(maxLo, lo)
			}
			if held != nil {
				held[i] = cur
			}
		}
		if s.trackLo && maxLo > s.maxLo {
			if err := tx.SetMeta(metaMaxLo, binary.BigEndian.AppendUint64(nil, maxLo)); err != nil {
				return err
			}
			s.maxLo = maxLo
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return stored, nil
}

// DropIf deletes partition p and its records if cond, called between the
// writes before and after, returns true. It reports whether it dropped a
// partition that held records. cond must be quick and must not call the
// Store.
func (s *Store[V]) DropIf(p int, cond func() bool) (bool, error) { return s.kv.DropIf(p, cond) }

// Scan returns up to limit records of partition p, tombstones included, in
// key order starting after the key after ("" for the first). An empty
// result means the partition has no more records. Each Scan reads one
// snapshot, so a long copy never holds the store, and returns every write
// that returned before it.
func (s *Store[V]) Scan(p int, after string, limit int) ([]Record[V], error) {
	var from []byte
	if after != "" {
		from = []byte(after)
	}
	var out []Record[V]
	_, err := s.kv.Scan(p, from, limit, func(k, v []byte) error {
		r, err := s.decode(string(k), bytes.Clone(v))
		if err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	return out, err
}
