package store

import (
	"cmp"
	"slices"
	"sort"
	"sync"
)

// index is the node's change log, kept in memory: for each partition, the
// position of every key's latest record, in order, with the key and when
// the record arrived. It is what the 'd' records say (each holds its
// position), so Open rebuilds it from them, and it costs no write of its
// own: a change updates it once the change is applied (kit's
// Tx.OnApplied), in the changes' order.
type index struct {
	mu    sync.RWMutex
	parts map[int]*partLog
}

// partLog is one partition's change log.
type partLog struct {
	entries []logEntry // by position
	dead    int        // entries whose key moved on
	head    uint64     // the last position added
}

// logEntry is one record's place in the change log.
type logEntry struct {
	pos  uint64
	at   int64 // arrival, Unix ms
	key  string
	dead bool // the key's record moved to a later position
}

// compactAt is how many dead entries a partition's log keeps before it
// may be compacted; it is compacted once they are also the majority.
const compactAt = 1024

func newIndex() *index { return &index{parts: map[int]*partLog{}} }

// move records that key's record in partition p is now at position pos,
// which is after every position of p, and no longer at prev (0: none).
func (x *index) move(p int, key string, pos uint64, at int64, prev uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	l := x.parts[p]
	if l == nil {
		l = &partLog{}
		x.parts[p] = l
	}
	if prev != 0 {
		l.kill(prev)
	}
	l.entries = append(l.entries, logEntry{pos: pos, at: at, key: key})
	l.head = max(l.head, pos)
}

// kill marks the entry at pos dead, and compacts the log when most of it
// is.
func (l *partLog) kill(pos uint64) {
	i, ok := slices.BinarySearchFunc(l.entries, pos, func(e logEntry, pos uint64) int {
		return cmp.Compare(e.pos, pos)
	})
	if !ok || l.entries[i].dead {
		return
	}
	l.entries[i].dead, l.entries[i].key = true, ""
	l.dead++
	if l.dead >= compactAt && 2*l.dead > len(l.entries) {
		l.entries = slices.DeleteFunc(l.entries, func(e logEntry) bool { return e.dead })
		l.entries = slices.Clip(l.entries)
		l.dead = 0
	}
}

// drop forgets partition p.
func (x *index) drop(p int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.parts, p)
}

// head returns the last position of partition p's log (0: empty).
func (x *index) head(p int) uint64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if l := x.parts[p]; l != nil {
		return l.head
	}
	return 0
}

// page appends to buf up to n live entries of partition p after position
// after and up to position upto, in order, and returns them; fewer than n
// means there are no more.
func (x *index) page(buf []logEntry, p int, after, upto uint64, n int) []logEntry {
	x.mu.RLock()
	defer x.mu.RUnlock()
	l := x.parts[p]
	if l == nil {
		return buf
	}
	i := sort.Search(len(l.entries), func(i int) bool { return l.entries[i].pos > after })
	for ; i < len(l.entries) && len(buf) < n; i++ {
		e := l.entries[i]
		if e.pos > upto {
			break
		}
		if !e.dead {
			buf = append(buf, e)
		}
	}
	return buf
}

// load sets partition p's log to entries, in any order, as Open found
// them.
func (x *index) load(p int, entries []logEntry) {
	slices.SortFunc(entries, func(a, b logEntry) int { return cmp.Compare(a.pos, b.pos) })
	l := &partLog{entries: slices.Clip(entries)}
	if n := len(entries); n > 0 {
		l.head = entries[n-1].pos
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.parts[p] = l
}
