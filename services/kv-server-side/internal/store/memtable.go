package store

import (
	"slices"
	"strings"
	"sync"
)

// memtable holds the records that are in the write-ahead log but not yet
// applied to bbolt, each key's latest only: reads look here first. Every
// record carries the LSN of its log entry; once the applier has put that
// entry in bbolt the record is forgotten here, unless a later write of the
// key replaced it meanwhile.
//
// The writer adds records once their entry is fsynced, so reads never see
// a write that a crash could take back. Its methods are safe for
// concurrent use.
type memtable struct {
	mu    sync.RWMutex
	parts map[int]map[string]memRecord
	last  uint64 // LSN of the last entry added
	count int    // records held
}

// memRecord is a record and the log entry that stored it. Its value is
// never modified once added.
type memRecord struct {
	rec Record
	lsn uint64
}

func newMemtable() *memtable {
	return &memtable{parts: map[int]map[string]memRecord{}}
}

// get returns key's latest record in partition p, if the memtable has it.
func (m *memtable) get(p int, key string) (Record, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.parts[p][key]
	return r.rec, ok
}

// add records entries, stored by log entry lsn. The writer calls it, in
// LSN order.
func (m *memtable) add(lsn uint64, entries []Entry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range entries {
		e := &entries[i]
		mp := m.parts[e.Partition]
		if mp == nil {
			mp = map[string]memRecord{}
			m.parts[e.Partition] = mp
		}
		if _, ok := mp[e.Key]; !ok {
			m.count++
		}
		mp[e.Key] = memRecord{rec: e.Record, lsn: lsn}
	}
	m.last = max(m.last, lsn)
}

// size returns the number of records held.
func (m *memtable) size() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.count
}

// snapshot returns every record held and the LSN of the last entry
// added: every record of the entries up to it is in the result or was
// replaced by a later one that is.
func (m *memtable) snapshot() ([]Entry, uint64) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]Entry, 0, m.count)
	for p, mp := range m.parts {
		for _, r := range mp {
			out = append(out, Entry{Partition: p, Record: r.rec})
		}
	}
	return out, m.last
}

// forget removes the records of the entries up to lsn, now in bbolt.
func (m *memtable) forget(lsn uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for p, mp := range m.parts {
		for k, r := range mp {
			if r.lsn <= lsn {
				delete(mp, k)
				m.count--
			}
		}
		if len(mp) == 0 {
			delete(m.parts, p)
		}
	}
}

// drop forgets partition p.
func (m *memtable) drop(p int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.count -= len(m.parts[p])
	delete(m.parts, p)
}

// scan returns partition p's records with keys after after, in key order.
func (m *memtable) scan(p int, after string) []Record {
	m.mu.RLock()
	out := make([]Record, 0, len(m.parts[p]))
	for k, r := range m.parts[p] {
		if k > after {
			out = append(out, r.rec)
		}
	}
	m.mu.RUnlock()
	slices.SortFunc(out, func(a, b Record) int { return strings.Compare(a.Key, b.Key) })
	return out
}
