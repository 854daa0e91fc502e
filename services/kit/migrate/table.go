package migrate

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"clusterkit.dev/clusterkit"
)

// State is where a partition stands on this node.
type State struct {
	// Role is the role the node's event handler last took on: "" until
	// the handler has seen the partition.
	Role clusterkit.Role
	// Filled is false while the node copies a partition it gained: its
	// store may miss keys.
	Filled bool
	// CatchingUp is true while the node merges the other owners' data
	// after it became the partition's primary: it holds every write it
	// took as an owner, not yet every write the cluster acknowledged.
	CatchingUp bool
	// Gen counts the changes of the partition, so that a delayed action
	// can tell whether the partition changed since it was scheduled.
	Gen uint64
}

// Owned reports whether the node holds the partition's data as an owner.
func (s State) Owned() bool {
	return s.Filled && s.Role != "" && s.Role != clusterkit.RoleNone
}

// Table records each partition's State. The map can name this node an
// owner before the event handler has copied the partition; the service
// consults the table so that it never answers from an incomplete store.
// Readers take no lock: they load an immutable snapshot.
type Table struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change
	snap    atomic.Pointer[[]State]
	ready   atomic.Bool // see NotReady
}

// NewTable returns a table in which no partition has been seen.
func NewTable() *Table {
	t := &Table{changed: make(chan struct{})}
	t.snap.Store(&[]State{})
	return t
}

// Get returns partition p's state: the zero State for a partition not
// seen yet.
func (t *Table) Get(p int) State {
	s := *t.snap.Load()
	if p < 0 || p >= len(s) {
		return State{}
	}
	return s[p]
}

// Set records p's state (its Gen is set by Set) and returns its new
// generation.
func (t *Table) Set(p int, st State) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.snap.Load()
	next := make([]State, max(len(old), p+1))
	copy(next, old)
	st.Gen = next[p].Gen + 1
	next[p] = st
	t.snap.Store(&next)
	close(t.changed)
	t.changed = make(chan struct{})
	return st.Gen
}

// Wait waits until ok(p's state) holds, at most timeout, and reports
// whether it does.
func (t *Table) Wait(ctx context.Context, p int, timeout time.Duration, ok func(State) bool) bool {
	if ok(t.Get(p)) {
		return true
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		t.mu.Lock()
		ch := t.changed
		t.mu.Unlock()
		if ok(t.Get(p)) {
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

// NotReady returns why this node (ck's) does not serve requests yet, or ""
// once it does: once it is in the cluster map with a known leader and its
// partition event handler has taken up every partition the map gives it
// (after a restart, that is after the replay of its log). Until then a
// request would wait (for a map, for the handler) or be answered from a
// stale map, so the service fails it at once, with 503, and the client or
// sender counts the other owners. Once ready, the node stays ready.
func (t *Table) NotReady(ck *clusterkit.ClusterKit) string {
	if t.ready.Load() {
		return ""
	}
	self := ck.GetMyNodeID()
	switch {
	case ck.Leader() == nil:
		return "no leader known yet"
	case ck.Node(self) == nil:
		return "this node is not in the cluster map yet"
	}
	parts := ck.Partitions()
	if len(parts) == 0 {
		return "no partition map yet"
	}
	for i := range parts {
		if Owner(&parts[i], self) && t.Get(parts[i].Index).Role == "" {
			return fmt.Sprintf("partition %d not taken up yet", parts[i].Index)
		}
	}
	t.ready.Store(true)
	return ""
}
