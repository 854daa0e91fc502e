package state

import "slices"

// MaxHistory is the number of owner changes each partition keeps: its
// last MaxHistory changes, oldest first. An entry takes about 150 bytes,
// so a cluster of P partitions keeps at most P × 1.2 KB of history (77 MB
// at 65,536 partitions after heavy churn; 80 KB at 64).
const MaxHistory = 8

// Change is one change of a partition's owners, recorded by Apply.
type Change struct {
	// Version is the map version the change made.
	Version uint64 `json:"version"`
	// At is when the leader proposed the change (Unix milliseconds, from
	// the command); 0 when the command did not carry it.
	At int64 `json:"at,omitempty"`
	// Epoch is the partition's epoch after the change.
	Epoch uint64 `json:"epoch"`
	// Reason says why: initial, join, leave, failure, rebalance, drain.
	Reason string `json:"reason"`
	// Owners are the ready owners after the change, primary first.
	Owners []string `json:"owners"`
	// Added and Removed are the owners gained and lost.
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
	// PrevPrimary is the primary before the change, when it changed.
	PrevPrimary string `json:"prev_primary,omitempty"`
	// From is the node an added owner copied from, and Rule the placement
	// rule that chose it, when known.
	From string `json:"from,omitempty"`
	Rule string `json:"rule,omitempty"`
}

// change is what an apply function knows about a change besides the owners.
type change struct {
	reason     string
	at         int64
	from, rule string
}

// record appends to partition i's history the change from before to its
// current owners, if its owners or primary changed. Apply calls it only
// for changes it commits, so Version is the version Apply is about to set.
func (s *State) record(i int, before []string, c change) {
	p := &s.Partitions[i]
	var added, removed []string
	for _, id := range p.Owners {
		if !slices.Contains(before, id) {
			added = append(added, id)
		}
	}
	for _, id := range before {
		if !slices.Contains(p.Owners, id) {
			removed = append(removed, id)
		}
	}
	prevPrimary := primaryOf(before)
	if len(added) == 0 && len(removed) == 0 && prevPrimary == p.Primary() {
		return
	}
	e := Change{Version: s.Version + 1, At: c.at, Epoch: p.Epoch, Reason: c.reason, Owners: p.Owners,
		Added: added, Removed: removed, Rule: c.rule}
	if len(added) > 0 {
		e.From = c.from
	}
	if prevPrimary != p.Primary() {
		e.PrevPrimary = prevPrimary
	}
	h := p.History
	if len(h) >= MaxHistory {
		h = h[len(h)-MaxHistory+1:]
	}
	// A new slice: clones of the state share the old one.
	p.History = append(slices.Clip(slices.Clone(h)), e)
}

// DropReason says why an owner is dropped without replacement: m.Reason
// when set, else its node is draining or dead, or placement wants fewer
// owners there.
func (s *State) DropReason(m Move) string {
	if m.Reason != "" {
		return m.Reason
	}
	switch n := s.Nodes[m.Node]; {
	case n == nil || n.Status == StatusDead:
		return "failure"
	case n.Draining:
		return "drain"
	}
	return "rebalance"
}
