package client

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// Replication lag, as a quorum client sees it: a write returns once a
// majority of its owners stored it, and its copies to the other owners go
// on in the background. Until they answer, those owners lag behind. When
// one fails, the owner has missed an acknowledged write; a later Get of
// the key writes the newest version back to a majority, and an owner that
// restarts catches its partitions up from the others.

// NodeLag is one owner's replication lag.
type NodeLag struct {
	// Node is the owner's node ID.
	Node string
	// Operations counts the acknowledged writes whose copy to Node is
	// still running; Seconds is the age of the oldest of them (0 when
	// there is none).
	Operations int
	Seconds    float64
	// Missed counts the acknowledged writes Node failed to store since the
	// client started.
	Missed uint64
}

// Lag returns the replication lag of every node of the client's map and of
// every owner this client has written to, by node ID: a node not written to
// yet lags by nothing.
func (c *Client) Lag() []NodeLag {
	var nodes []string
	if topo := c.sdk.Topology(); topo != nil {
		nodes = make([]string, 0, len(topo.Nodes))
		for _, n := range topo.Nodes {
			nodes = append(nodes, n.ID)
		}
	}
	return c.lag.snapshot(time.Now(), nodes...)
}

// lagTracker follows the copies of acknowledged writes to their owners.
type lagTracker struct {
	mu    sync.Mutex
	nodes map[string]*nodeLag
}

type nodeLag struct {
	pending map[*writeTrack]time.Time
	missed  uint64
}

func (t *lagTracker) node(id string) *nodeLag {
	if t.nodes == nil {
		t.nodes = map[string]*nodeLag{}
	}
	n := t.nodes[id]
	if n == nil {
		n = &nodeLag{pending: map[*writeTrack]time.Time{}}
		t.nodes[id] = n
	}
	return n
}

// track starts following a write to owners (node IDs, indexed by the tags
// of the write's calls).
func (t *lagTracker) track(owners []string, start time.Time) *writeTrack {
	return &writeTrack{t: t, owners: owners, start: start,
		answered: make([]bool, len(owners)), failed: make([]bool, len(owners))}
}

// snapshot returns the lag of the nodes written to and, at zero, of the
// other nodes given (distinct IDs).
func (t *lagTracker) snapshot(now time.Time, nodes ...string) []NodeLag {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]NodeLag, 0, max(len(t.nodes), len(nodes)))
	for id, n := range t.nodes {
		l := NodeLag{Node: id, Operations: len(n.pending), Missed: n.missed}
		for _, start := range n.pending {
			l.Seconds = max(l.Seconds, now.Sub(start).Seconds())
		}
		out = append(out, l)
	}
	for _, id := range nodes {
		if t.nodes[id] == nil {
			out = append(out, NodeLag{Node: id})
		}
	}
	slices.SortFunc(out, func(a, b NodeLag) int { return strings.Compare(a.Node, b.Node) })
	return out
}

// writeTrack is one write on its way to its owners.
type writeTrack struct {
	t      *lagTracker
	owners []string
	start  time.Time

	mu       sync.Mutex
	acked    bool // the write returned to its caller as stored
	answered []bool
	failed   []bool
}

// answer records the answer of the owner with tag. The batch sender calls
// it after delivering the answer, so the write may have returned already.
func (w *writeTrack) answer(tag int, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.answered[tag], w.failed[tag] = true, err != nil
	if !w.acked {
		return
	}
	w.t.mu.Lock()
	n := w.t.node(w.owners[tag])
	delete(n.pending, w)
	if err != nil {
		n.missed++
	}
	w.t.mu.Unlock()
}

// returned records that the write returned to its caller, acknowledged or
// not. From an acknowledged write, the owners that have not answered lag
// and those that failed missed it.
func (w *writeTrack) returned(acked bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.acked = acked
	if !acked {
		return
	}
	w.t.mu.Lock()
	defer w.t.mu.Unlock()
	for tag, id := range w.owners {
		switch {
		case !w.answered[tag]:
			w.t.node(id).pending[w] = w.start
		case w.failed[tag]:
			w.t.node(id).missed++
		}
	}
}
