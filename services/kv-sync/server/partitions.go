package server

import (
	"sync"
	"sync/atomic"

	"clusterkit.dev/clusterkit"
)

// partitions records, per partition, the role this node's event handler
// last took on and whether its data is complete. The map can name this node
// an owner before the handler has copied the partition; such an owner
// refuses reads until then, so it never answers from an incomplete store.
//
// Readers take no lock: they load an immutable snapshot.
type partitions struct {
	mu   sync.Mutex // serialises writers
	snap atomic.Pointer[[]partState]
}

type partState struct {
	role clusterkit.Role
	// filled is false while the node copies a partition it gained: its
	// store may miss keys.
	filled bool
	// gen counts the changes of this partition, so that a delayed action
	// can tell whether the partition changed since it was scheduled.
	gen uint64
}

func newPartitions() *partitions {
	t := &partitions{}
	t.snap.Store(&[]partState{})
	return t
}

// get returns partition p's state: the zero state (no role, not filled)
// for a partition the handler has not seen.
func (t *partitions) get(p int) partState {
	s := *t.snap.Load()
	if p < 0 || p >= len(s) {
		return partState{}
	}
	return s[p]
}

// set records p's state and returns its new generation.
func (t *partitions) set(p int, st partState) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.snap.Load()
	next := make([]partState, max(len(old), p+1))
	copy(next, old)
	st.gen = next[p].gen + 1
	next[p] = st
	t.snap.Store(&next)
	return st.gen
}

// ready reports whether this node holds p's data as an owner.
func (t *partitions) ready(p int) bool {
	st := t.get(p)
	return st.filled && st.role != "" && st.role != clusterkit.RoleNone
}
