package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"clusterkit.dev/clusterkit"
)

// partitions records, per partition, the role this node's event handler
// last took on and where its data stands. The map can name this node an
// owner or the primary before the handler has run; reads wait for the
// handler, so a new owner never answers from an empty store.
//
// Readers take no lock: they load an immutable snapshot.
type partitions struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change
	snap    atomic.Pointer[[]partState]
}

type partState struct {
	role clusterkit.Role
	// filled is false while the node copies a partition it gained: its
	// store may miss keys.
	filled bool
	// catchingUp is true while a promoted primary merges the other
	// owners' data: it holds every write it acknowledged as a replica, but
	// not yet every write the cluster acknowledged.
	catchingUp bool
	// gen counts the changes of this partition, so that a delayed action
	// can tell whether the partition changed since it was scheduled.
	gen uint64
}

func newPartitions() *partitions {
	t := &partitions{changed: make(chan struct{})}
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
	close(t.changed)
	t.changed = make(chan struct{})
	return st.gen
}

// ready reports whether this node holds p's data as an owner.
func (t *partitions) ready(p int) bool {
	st := t.get(p)
	return st.filled && st.role != "" && st.role != clusterkit.RoleNone
}

// servable reports whether this node may answer reads of p as primary.
func (t *partitions) servable(p int) bool {
	st := t.get(p)
	return st.filled && !st.catchingUp && st.role == clusterkit.RolePrimary
}

// waitServable waits until p is servable, at most timeout.
func (t *partitions) waitServable(ctx context.Context, p int, timeout time.Duration) bool {
	if t.servable(p) {
		return true
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		t.mu.Lock()
		ch := t.changed
		t.mu.Unlock()
		if t.servable(p) {
			return true
		}
		select {
		case <-ch:
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}
