package server

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// mutation is one atomic change being built under the store's mutation
// lock (see Store.mutate). Its reads see the store as every earlier
// change left it, and this mutation's own changes.
type mutation struct {
	s  *Store
	tx *bolt.Tx // read transaction, begun on the first read that needs bbolt
	// buckets caches the partitions' buckets in tx (nil: no data).
	buckets map[int]*pbucket
	ops     []walOp

	// This mutation's own changes, by key, made visible to its reads.
	recs    map[partKey]*stored
	cursors map[partKey]uint64 // by partition and cursorKey
	fences  map[int]uint64
}

type partKey struct {
	p   int
	key string
}

// done ends the mutation's read transaction.
func (m *mutation) done() {
	if m.tx != nil {
		_ = m.tx.Rollback()
		m.tx = nil
	}
}

// bucket returns partition p's bbolt buckets as of the mutation's read
// transaction, or nil. The memtable forgets a change only under the
// mutation lock, after bbolt has it, so the memtable and this transaction
// together always hold every change.
func (m *mutation) bucket(p int) (*pbucket, error) {
	if pb, ok := m.buckets[p]; ok {
		return pb, nil
	}
	if m.tx == nil {
		tx, err := m.s.db.Begin(false)
		if err != nil {
			return nil, fmt.Errorf("kv-async: store: %w", err)
		}
		m.tx = tx
		m.buckets = map[int]*pbucket{}
	}
	pb, err := partition(m.tx, p, false)
	if err != nil {
		return nil, err
	}
	m.buckets[p] = pb
	return pb, nil
}

// pending returns the header of key's record in partition p if this
// mutation or the memtable has it, without reading bbolt.
func (m *mutation) pending(p int, key string) (header, bool) {
	if st := m.recs[partKey{p, key}]; st != nil {
		return header{version: st.Version, deleted: st.Deleted, local: st.local}, true
	}
	if mp := m.s.mem.part(p); mp != nil {
		if r := mp.data[key]; r != nil {
			return header{version: r.st.Version, deleted: r.st.Deleted, local: r.st.local}, true
		}
	}
	return header{}, false
}

// header returns the version of key's current record in partition p
// (local 0 when found is false).
func (m *mutation) header(p int, key string) (header, bool, error) {
	if h, ok := m.pending(p, key); ok {
		return h, true, nil
	}
	pb, err := m.bucket(p)
	if err != nil || pb == nil {
		return header{}, false, err
	}
	b := pb.data.Get([]byte(key))
	if b == nil {
		return header{}, false, nil
	}
	h, err := decodeHeader(b)
	if err != nil {
		return header{}, false, fmt.Errorf("key %q: %w", key, err)
	}
	return h, true, nil
}

// nextLocal hands out the store's next local sequence number.
func (m *mutation) nextLocal() uint64 {
	m.s.local++
	return m.s.local
}

// put stores rec in partition p under local sequence number local. With
// known, prev is the local sequence number of the record it replaces (0:
// none), as header found it.
func (m *mutation) put(p int, rec Record, local uint64, now time.Time, prev uint64, known bool) {
	st := stored{Record: rec, local: local}
	m.ops = append(m.ops, walOp{kind: opPut, partition: p, rec: st, at: now.UnixMilli(), prev: prev, prevKnown: known})
	if m.recs != nil {
		m.recs[partKey{p, rec.Key}] = &st
	}
}

// merge stores rec if it is newer than what partition p holds for its
// key, and reports whether it did. Replicated and migrated records go
// through merge, so applying one twice, or an older one after a newer one,
// changes nothing.
func (m *mutation) merge(p int, rec Record, now time.Time) (bool, error) {
	h, found, err := m.header(p, rec.Key)
	if err != nil {
		return false, err
	}
	if found && !rec.Version.Newer(h.version) {
		return false, nil
	}
	if m.recs == nil {
		m.recs = map[partKey]*stored{}
	}
	m.put(p, rec, m.nextLocal(), now, h.local, true)
	return true, nil
}

// cursor returns partition p's cursor for (node, inc), and whether the
// partition has one (a cursor at 0 still records that node as a source).
func (m *mutation) cursor(p int, node string, inc uint64) (uint64, bool, error) {
	ck := string(cursorKey(node, inc))
	if seq, ok := m.cursors[partKey{p, ck}]; ok {
		return seq, true, nil
	}
	if mp := m.s.mem.part(p); mp != nil {
		if c, ok := mp.cursors[ck]; ok {
			return c.c.Seq, true, nil
		}
	}
	pb, err := m.bucket(p)
	if err != nil || pb == nil {
		return 0, false, err
	}
	seq, ok := pb.cursor(node, inc)
	return seq, ok, nil
}

// advance raises partition p's cursor c.Node, c.Inc to c.Seq, creating it
// if needed.
func (m *mutation) advance(p int, c Cursor) error {
	cur, ok, err := m.cursor(p, c.Node, c.Inc)
	if err != nil || c.Node == "" || (ok && c.Seq <= cur) {
		return err
	}
	if m.cursors == nil {
		m.cursors = map[partKey]uint64{}
	}
	m.cursors[partKey{p, string(cursorKey(c.Node, c.Inc))}] = c.Seq
	m.ops = append(m.ops, walOp{kind: opCursor, partition: p, cursor: c})
	return nil
}

// fence returns the highest epoch partition p accepted a batch from.
func (m *mutation) fence(p int) (uint64, error) {
	if e, ok := m.fences[p]; ok {
		return e, nil
	}
	if mp := m.s.mem.part(p); mp != nil && mp.fence.lsn != 0 {
		return mp.fence.epoch, nil
	}
	pb, err := m.bucket(p)
	if err != nil || pb == nil {
		return 0, err
	}
	return pb.fence(), nil
}

// raiseFence raises partition p's fence to epoch.
func (m *mutation) raiseFence(p int, epoch uint64) error {
	cur, err := m.fence(p)
	if err != nil || epoch <= cur {
		return err
	}
	if m.fences == nil {
		m.fences = map[int]uint64{}
	}
	m.fences[p] = epoch
	m.ops = append(m.ops, walOp{kind: opFence, partition: p, epoch: epoch})
	return nil
}
