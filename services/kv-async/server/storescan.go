package server

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Reading a partition's index (its change log) across bbolt and the
// memtable: bbolt holds the index as of the last applied log entry, the
// memtable every record stored since, in order. A key changed since has
// an entry in both; the bbolt one then carries its older record, which
// is harmless to ship or stream before the newer one (receivers merge by
// version), so the two are simply merged in local sequence order.

// indexRecord is one entry of a partition's index.
type indexRecord struct {
	local uint64
	at    int64 // arrival on this node, Unix ms
	// rec is the record; with scan's records false, only its key is set.
	rec Record
}

// scan calls fn with partition p's index entries after position after,
// in order, until fn returns false. It stops before the changes of log
// entries after upto: pass Store.synced() to see only fsynced changes,
// Store.written() to see every change. With records false, the entries
// carry only their key. scan returns the last position of the index it
// knows of, which is at least every position passed to fn.
func (s *Store) scan(p int, after, upto uint64, records bool, fn func(r *indexRecord) bool) (head uint64, err error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	// The memtable first: what it forgets meanwhile, the bbolt transaction
	// begun after has.
	tail, head := s.mem.tailAfter(p, after, upto)
	if after >= head {
		return head, nil
	}
	if after >= s.bboltHead(p) {
		mergeIndex(nil, after, tail, records, fn)
		return head, nil
	}
	err = s.view(func(tx *bolt.Tx) error {
		pb, err := partition(tx, p, false)
		if err != nil {
			return err
		}
		h, err := mergeIndex(pb, after, tail, records, fn)
		head = max(head, h)
		return err
	})
	return head, err
}

// synced returns the log position up to which every change is fsynced:
// what may be shipped to replicas.
func (s *Store) synced() uint64 { return s.wal.syncedLSN() }

// written returns the log position of the last change made.
func (s *Store) written() uint64 { return s.wal.lastLSN() }

// bboltHead returns the last position of partition p's index in bbolt.
func (s *Store) bboltHead(p int) uint64 {
	s.mem.mu.RLock()
	defer s.mem.mu.RUnlock()
	return s.mem.heads[p]
}

// mergeIndex calls fn with the entries after position after of pb's index
// (pb may be nil) and of tail, merged in order, until fn returns false.
// It returns the last bbolt position it read.
func mergeIndex(pb *pbucket, after uint64, tail []*memRecord, records bool, fn func(r *indexRecord) bool) (head uint64, err error) {
	fromMem := func(m *memRecord) *indexRecord {
		r := &indexRecord{local: m.st.local, at: m.at, rec: m.st.Record}
		if !records {
			r.rec = Record{Key: m.st.Key}
		}
		return r
	}
	if pb != nil {
		c := pb.index.Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil; k, v = c.Next() {
			if len(k) != 8 || len(v) < 8 {
				return head, fmt.Errorf("index entry %x: %w", k, errCorrupt)
			}
			local := binary.BigEndian.Uint64(k)
			for len(tail) > 0 && tail[0].st.local < local {
				if !fn(fromMem(tail[0])) {
					return head, nil
				}
				tail = tail[1:]
			}
			if len(tail) > 0 && tail[0].st.local == local {
				tail = tail[1:] // the same record, applied meanwhile
			}
			head = local
			r := &indexRecord{local: local, at: int64(binary.BigEndian.Uint64(v)), rec: Record{Key: string(v[8:])}}
			if records {
				st, ok, err := pb.get(r.rec.Key)
				if err != nil || !ok || st.local != local {
					return head, fmt.Errorf("index entry %d for key %q: record missing or bad (%v): %w", local, r.rec.Key, err, errCorrupt)
				}
				r.rec = st.Record
			}
			if !fn(r) {
				return head, nil
			}
		}
	}
	for _, m := range tail {
		if !fn(fromMem(m)) {
			break
		}
	}
	return head, nil
}

// Cursors returns partition p's cursors.
func (s *Store) Cursors(p int) ([]Cursor, error) {
	mem, _ := s.mem.cursors(p)
	var out []Cursor
	err := s.view(func(tx *bolt.Tx) error {
		pb, err := partition(tx, p, false)
		if err != nil || pb == nil {
			return err
		}
		out = pb.allCursors()
		return nil
	})
	return mergeCursors(out, mem), err
}

// mergeCursors returns base with each cursor of newer raised or added.
func mergeCursors(base, newer []Cursor) []Cursor {
outer:
	for _, n := range newer {
		for i := range base {
			if base[i].Node == n.Node && base[i].Inc == n.Inc {
				base[i].Seq = max(base[i].Seq, n.Seq)
				continue outer
			}
		}
		base = append(base, n)
	}
	return base
}

// snapshot is a consistent view of one partition: every change made
// before it was taken, all fsynced, and none after. Close it when done.
type snapshot struct {
	tx      *bolt.Tx
	pb      *pbucket // nil: bbolt has nothing of the partition
	tail    []*memRecord
	cursors []Cursor
	head    uint64
}

// snapshot takes a view of partition p once every change made before is
// fsynced. It holds back changes for the time of an fsync.
func (s *Store) snapshot(p int) (*snapshot, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed.Load() {
		return nil, ErrClosed
	}
	last := s.wal.lastLSN()
	if err := s.wal.sync(last); err != nil {
		return nil, err
	}
	sn := &snapshot{}
	sn.tail, sn.head = s.mem.tailAfter(p, 0, last)
	mem, _ := s.mem.cursors(p)
	tx, err := s.db.Begin(false)
	if err != nil {
		return nil, err
	}
	sn.tx = tx
	if sn.pb, err = partition(tx, p, false); err != nil {
		sn.Close()
		return nil, err
	}
	if sn.pb != nil {
		sn.cursors = sn.pb.allCursors()
	}
	sn.cursors = mergeCursors(sn.cursors, mem)
	return sn, nil
}

// each calls fn with the partition's index entries after position after,
// with their records, in order, until fn returns false.
func (sn *snapshot) each(after uint64, fn func(r *indexRecord) bool) error {
	_, err := mergeIndex(sn.pb, after, sn.tail, true, fn)
	return err
}

// Close ends the snapshot.
func (sn *snapshot) Close() {
	if sn.tx != nil {
		_ = sn.tx.Rollback()
		sn.tx = nil
	}
}
