package placement

import "testing"

// allTables calls f with every valid table for nodes and cfg: every
// partition has min(RF, nodes) distinct owners, zone-distinct when there
// are enough zones, and any of them as primary. Owner order beyond the
// primary does not matter, so each owner set is visited once per primary.
func allTables(nodes []Node, cfg Config, f func(Table)) {
	r := min(cfg.ReplicationFactor, len(nodes))
	group, zoned := zoneGroups(nodes, cfg.ReplicationFactor)
	var choices [][]string
	var pick func(start int, chosen []string)
	pick = func(start int, chosen []string) {
		if len(chosen) == r {
			for i := range chosen {
				owners := append([]string{chosen[i]}, chosen[:i]...)
				choices = append(choices, append(owners, chosen[i+1:]...))
			}
			return
		}
		for i := start; i < len(nodes); i++ {
			ok := true
			for _, c := range chosen {
				if zoned && group[c] == group[nodes[i].ID] {
					ok = false
				}
			}
			if ok {
				pick(i+1, append(chosen[:len(chosen):len(chosen)], nodes[i].ID))
			}
		}
	}
	pick(0, nil)
	tab := make(Table, cfg.Partitions)
	var fill func(p int)
	fill = func(p int) {
		if p == len(tab) {
			f(tab)
			return
		}
		for _, c := range choices {
			tab[p].Owners = c
			fill(p + 1)
		}
	}
	fill(0)
}

type extremes struct{ maxSlots, minSlots, maxPrimaries, minPrimaries int }

func extremesOf(t Table, nodes []Node) extremes {
	slots, primaries := tally(t, nodes)
	e := extremes{minSlots: 1 << 30, minPrimaries: 1 << 30}
	for _, n := range nodes {
		e.maxSlots = max(e.maxSlots, slots[n.ID])
		e.minSlots = min(e.minSlots, slots[n.ID])
		e.maxPrimaries = max(e.maxPrimaries, primaries[n.ID])
		e.minPrimaries = min(e.minPrimaries, primaries[n.ID])
	}
	return e
}

var bruteZonings = map[string][]string{
	"no zones":         nil,
	"two even zones":   {"a", "b", "a", "b"},
	"two uneven zones": {"a", "a", "a", "b"},
	"zones and loners": {"a", "", "a", ""},
}

// TestBruteForceBalance checks, on every tiny input, that Compute's busiest
// node is no busier, and its idlest no idler, than in the best of all valid
// tables, for slots and for primaries alike.
func TestBruteForceBalance(t *testing.T) {
	for name, zones := range bruteZonings {
		for n := 1; n <= 4; n++ {
			nodes := makeNodes(n)
			for i := range nodes {
				if zones != nil {
					nodes[i].Zone = zones[i]
				}
			}
			for parts := 1; parts <= 3; parts++ {
				for rf := 1; rf <= 3; rf++ {
					cfg := Config{Partitions: parts, ReplicationFactor: rf}
					best := extremes{maxSlots: 1 << 30, maxPrimaries: 1 << 30, minSlots: -1, minPrimaries: -1}
					allTables(nodes, cfg, func(tab Table) {
						e := extremesOf(tab, nodes)
						best.maxSlots = min(best.maxSlots, e.maxSlots)
						best.minSlots = max(best.minSlots, e.minSlots)
						best.maxPrimaries = min(best.maxPrimaries, e.maxPrimaries)
						best.minPrimaries = max(best.minPrimaries, e.minPrimaries)
					})
					got := extremesOf(mustCompute(t, nil, nodes, cfg), nodes)
					if got != best {
						t.Errorf("%s, %d nodes, %+v: got %+v, best possible %+v", name, n, cfg, got, best)
					}
				}
			}
		}
	}
}

// TestBruteForceMoves checks, on every tiny input without zones, that a
// single join or leave moves no more slots than the best table that is as
// even as guarantee 2 requires (found by enumeration), and changes no more
// primaries than the best such table that moves that few slots.
func TestBruteForceMoves(t *testing.T) {
	for n := 1; n <= 4; n++ {
		for parts := 1; parts <= 3; parts++ {
			for rf := 1; rf <= 3; rf++ {
				cfg := Config{Partitions: parts, ReplicationFactor: rf}
				nodes := makeNodes(n)
				prev := mustCompute(t, nil, nodes, cfg)
				changes := map[string][]Node{}
				if n < 4 {
					changes["join"] = makeNodes(n + 1)
				}
				if n > 1 {
					for _, leaving := range nodes {
						changes["leave of "+leaving.ID] = without(nodes, leaving.ID)
					}
				}
				for what, after := range changes {
					bestMoved, bestChanged := 1<<30, 1<<30
					allTables(after, cfg, func(tab Table) {
						slots, primaries := tally(tab, after)
						if spread(slots) > 1 || spread(primaries) > 1 {
							return
						}
						moved, changed := Diff(prev, tab)
						if moved < bestMoved || moved == bestMoved && changed < bestChanged {
							bestMoved, bestChanged = moved, changed
						}
					})
					moved, changed := Diff(prev, mustCompute(t, prev, after, cfg))
					if moved != bestMoved || changed != bestChanged {
						t.Errorf("%d nodes, %+v, %s: moved %d slots and %d primaries, best %d and %d",
							n, cfg, what, moved, changed, bestMoved, bestChanged)
					}
				}
			}
		}
	}
}
