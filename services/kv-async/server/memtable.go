package server

import (
	"slices"
	"sort"
	"sync"
)

// memtable holds the changes that are in the write-ahead log but not yet
// applied to bbolt: reads look here first. Every change carries the LSN of
// its log entry; once that entry is applied to bbolt the change is
// forgotten here (unless a later change replaced it).
//
// Changes are added by mutations and removed by the applier, both holding
// the store's mutation lock, and also mu; readers hold mu for reading.
type memtable struct {
	mu    sync.RWMutex
	parts map[int]*memPart
	// heads holds, per partition, the last local sequence number in
	// bbolt's index: bbolt has nothing after it.
	heads map[int]uint64
}

// memPart is one partition's changes.
type memPart struct {
	// data holds each key's latest record.
	data map[string]*memRecord
	// tail holds every record, in local sequence order: the end of the
	// partition's index that bbolt does not have yet. A key written twice
	// appears twice; the older one is superseded.
	tail    []*memRecord
	cursors map[string]memCursor // by cursorKey
	fence   memFence
}

// memRecord is a stored record, when it arrived (Unix ms), and the log
// entry that stored it. It is never modified once added.
type memRecord struct {
	st  stored
	at  int64
	lsn uint64
}

type memCursor struct {
	c   Cursor
	lsn uint64
}

type memFence struct {
	epoch uint64
	lsn   uint64
}

func newMemtable() *memtable {
	return &memtable{parts: map[int]*memPart{}, heads: map[int]uint64{}}
}

// part returns partition p's changes, or nil. The caller holds mu, or the
// mutation lock.
func (m *memtable) part(p int) *memPart { return m.parts[p] }

// record returns key's latest record in partition p, or nil.
func (m *memtable) record(p int, key string) *memRecord {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if mp := m.parts[p]; mp != nil {
		return mp.data[key]
	}
	return nil
}

// add records the operations of log entry lsn. The caller holds the
// mutation lock.
func (m *memtable) add(lsn uint64, ops []walOp) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range ops {
		op := &ops[i]
		mp := m.parts[op.partition]
		if mp == nil {
			mp = &memPart{data: map[string]*memRecord{}, cursors: map[string]memCursor{}}
			m.parts[op.partition] = mp
		}
		switch op.kind {
		case opPut:
			r := &memRecord{st: op.rec, at: op.at, lsn: lsn}
			mp.data[r.st.Key] = r
			mp.tail = append(mp.tail, r)
		case opCursor:
			mp.cursors[string(cursorKey(op.cursor.Node, op.cursor.Inc))] = memCursor{c: op.cursor, lsn: lsn}
		case opFence:
			mp.fence = memFence{epoch: op.epoch, lsn: lsn}
		}
	}
}

// forget drops the changes of the given log entries, now applied to
// bbolt, except those a later entry replaced, and raises the partitions'
// bbolt heads. The caller holds the mutation lock.
func (m *memtable) forget(entries []*walEntry) {
	if len(entries) == 0 {
		return
	}
	last := entries[len(entries)-1].lsn
	m.mu.Lock()
	defer m.mu.Unlock()
	touched := map[int]bool{}
	for _, e := range entries {
		for i := range e.ops {
			op := &e.ops[i]
			mp := m.parts[op.partition]
			if mp == nil {
				continue // dropped meanwhile
			}
			touched[op.partition] = true
			switch op.kind {
			case opPut:
				if r := mp.data[op.rec.Key]; r != nil && r.lsn == e.lsn {
					delete(mp.data, op.rec.Key)
				}
				m.heads[op.partition] = max(m.heads[op.partition], op.rec.local)
			case opCursor:
				k := string(cursorKey(op.cursor.Node, op.cursor.Inc))
				if c, ok := mp.cursors[k]; ok && c.lsn == e.lsn {
					delete(mp.cursors, k)
				}
			case opFence:
				if mp.fence.lsn == e.lsn {
					mp.fence = memFence{}
				}
			}
		}
	}
	for p := range touched {
		mp := m.parts[p]
		// The tail is in LSN order too: drop its applied prefix.
		n := sort.Search(len(mp.tail), func(i int) bool { return mp.tail[i].lsn > last })
		if n > 0 {
			clear(mp.tail[:n])
			mp.tail = mp.tail[n:]
			if len(mp.tail) == 0 {
				mp.tail = nil
			}
		}
		if len(mp.tail) == 0 && len(mp.data) == 0 && len(mp.cursors) == 0 && mp.fence.lsn == 0 {
			delete(m.parts, p)
		}
	}
}

// pending reports whether partition p has changes not yet forgotten.
func (m *memtable) pending(p int) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.parts[p] != nil
}

// drop forgets partition p entirely (its bbolt bucket was deleted).
func (m *memtable) drop(p int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.parts, p)
	delete(m.heads, p)
}

// tailAfter returns partition p's records after local sequence number
// after whose entries are at or before lsn, and the partition's head: the
// last position of its index, in bbolt or in those entries.
func (m *memtable) tailAfter(p int, after, lsn uint64) (recs []*memRecord, head uint64) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	head = m.heads[p]
	mp := m.parts[p]
	if mp == nil {
		return nil, head
	}
	// The tail is in LSN order as well as in position order.
	j := sort.Search(len(mp.tail), func(i int) bool { return mp.tail[i].lsn > lsn })
	i := sort.Search(j, func(i int) bool { return mp.tail[i].st.local > after })
	if j > 0 {
		head = max(head, mp.tail[j-1].st.local)
	}
	return slices.Clone(mp.tail[i:j]), head
}

// cursors returns partition p's cursors changed since bbolt's copy, with
// the highest LSN among them.
func (m *memtable) cursors(p int) (cs []Cursor, lsn uint64) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if mp := m.parts[p]; mp != nil {
		for _, c := range mp.cursors {
			cs = append(cs, c.c)
			lsn = max(lsn, c.lsn)
		}
	}
	return cs, lsn
}

// partitions lists the partitions with changes.
func (m *memtable) partitions() []int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]int, 0, len(m.parts))
	for p := range m.parts {
		out = append(out, p)
	}
	return out
}
