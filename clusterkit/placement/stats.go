package placement

import (
	"cmp"
	"slices"
)

// Stats summarises a table.
type Stats struct {
	// Partitions is the number of partitions in the table.
	Partitions int
	// Nodes has one entry per node that owns at least one slot, sorted by
	// ID. A node that owns nothing does not appear.
	Nodes []NodeStats
	// MinSlots and MaxSlots are the extreme slot counts over Nodes.
	MinSlots, MaxSlots int
	// MinPrimaries and MaxPrimaries are the extreme primary counts over
	// Nodes.
	MinPrimaries, MaxPrimaries int
	// SlotRatio is MaxSlots divided by the mean slot count over Nodes;
	// 1 means perfectly even. Zero for a table without owners.
	SlotRatio float64
	// PrimaryRatio is MaxPrimaries divided by the mean primary count over
	// Nodes. Zero for a table without owners.
	PrimaryRatio float64
}

// NodeStats is one node's share of a table.
type NodeStats struct {
	ID string
	// Slots is the number of partitions the node owns.
	Slots int
	// Primaries is the number of partitions the node is primary of.
	Primaries int
}

// Summarize returns per-node slot and primary counts of t and how far the
// busiest node is above the mean.
func Summarize(t Table) Stats {
	st := Stats{Partitions: len(t)}
	index := make(map[string]int)
	slots, primaries := 0, 0
	for _, part := range t {
		for i, id := range part.Owners {
			k, ok := index[id]
			if !ok {
				k = len(st.Nodes)
				index[id] = k
				st.Nodes = append(st.Nodes, NodeStats{ID: id})
			}
			st.Nodes[k].Slots++
			slots++
			if i == 0 {
				st.Nodes[k].Primaries++
				primaries++
			}
		}
	}
	if len(st.Nodes) == 0 {
		return st
	}
	slices.SortFunc(st.Nodes, func(a, b NodeStats) int { return cmp.Compare(a.ID, b.ID) })
	st.MinSlots, st.MinPrimaries = st.Nodes[0].Slots, st.Nodes[0].Primaries
	for _, n := range st.Nodes {
		st.MinSlots = min(st.MinSlots, n.Slots)
		st.MaxSlots = max(st.MaxSlots, n.Slots)
		st.MinPrimaries = min(st.MinPrimaries, n.Primaries)
		st.MaxPrimaries = max(st.MaxPrimaries, n.Primaries)
	}
	nodes := float64(len(st.Nodes))
	st.SlotRatio = float64(st.MaxSlots) / (float64(slots) / nodes)
	if primaries > 0 {
		st.PrimaryRatio = float64(st.MaxPrimaries) / (float64(primaries) / nodes)
	}
	return st
}

// Diff compares two tables partition by partition. moved counts the
// (partition, node) ownership pairs in next that are not in prev: the
// replicas that must be copied to make next live. primaryChanges counts the
// partitions whose primary (Owners[0], or none) differs: the failovers.
// Partitions beyond the end of prev count as having no owners.
func Diff(prev, next Table) (moved, primaryChanges int) {
	for p, part := range next {
		var old Partition
		if p < len(prev) {
			old = prev[p]
		}
		for _, id := range part.Owners {
			if !slices.Contains(old.Owners, id) {
				moved++
			}
		}
		if part.Primary() != old.Primary() {
			primaryChanges++
		}
	}
	return moved, primaryChanges
}
