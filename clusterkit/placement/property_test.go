package placement

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// drawPartitions draws a partition count up to 4096, mostly small so that
// corner cases (fewer partitions than nodes) are common.
func drawPartitions(t *rapid.T) int {
	if rapid.Bool().Draw(t, "many partitions") {
		return rapid.IntRange(1, 4096).Draw(t, "partitions")
	}
	return rapid.IntRange(1, 64).Draw(t, "partitions")
}

// TestPropertyJoinLeave runs random sequences of single joins and leaves of
// equal-weight nodes without zones, checking guarantees 1–3 at every step.
func TestPropertyJoinLeave(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := Config{
			Partitions:        drawPartitions(t),
			ReplicationFactor: rapid.IntRange(1, 5).Draw(t, "rf"),
		}
		nodes := makeNodes(rapid.IntRange(0, 12).Draw(t, "nodes"))
		tab := mustCompute(t, nil, nodes, cfg)
		checkValid(t, tab, nodes, cfg)
		checkEven(t, tab, nodes)
		nextID := len(nodes)
		for step := range rapid.IntRange(1, 6).Draw(t, "steps") {
			var next Table
			if len(nodes) == 0 || rapid.Bool().Draw(t, fmt.Sprintf("join %d", step)) {
				joined := append(slices.Clone(nodes), Node{ID: fmt.Sprintf("node-%04d", nextID)})
				nextID++
				next = mustCompute(t, tab, joined, cfg)
				checkJoin(t, tab, next, joined, cfg)
				nodes = joined
			} else {
				leaving := rapid.SampledFrom(nodes).Draw(t, fmt.Sprintf("leave %d", step))
				rest := without(nodes, leaving.ID)
				next = mustCompute(t, tab, rest, cfg)
				checkLeave(t, tab, next, leaving.ID, rest, cfg)
				nodes = rest
			}
			checkValid(t, next, nodes, cfg)
			checkEven(t, next, nodes)
			if again := mustCompute(t, next, nodes, cfg); !reflect.DeepEqual(again, next) {
				t.Fatalf("recomputing with unchanged nodes changed the table")
			}
			tab = next
		}
	})
}

// checkJoin checks guarantee 3 for a join of the last node in nodes: the
// moved slots are exactly the new node's slots, which are floor(P·R/N).
// Every partition the new node is primary of changed primary, so that many
// changes are the least possible; TestPrimaryChanges measures how close
// Compute comes.
func checkJoin(t tb, prev, next Table, nodes []Node, cfg Config) {
	t.Helper()
	id := nodes[len(nodes)-1].ID
	slots, primaries := tally(next, nodes)
	moved, changed := Diff(prev, next)
	n := len(nodes)
	want := cfg.Partitions * min(cfg.ReplicationFactor, n) / n
	if slots[id] != want || moved != want {
		t.Fatalf("join of %s: it owns %d and %d slots moved, want both floor(P·R/N) = %d", id, slots[id], moved, want)
	}
	if changed < primaries[id] {
		t.Fatalf("join of %s: %d primaries changed, fewer than its own %d", id, changed, primaries[id])
	}
}

// checkLeave checks guarantee 3 for the leave of id: no remaining node
// loses a slot, and the moved slots are 2E−M, where E is the number of
// slots the leave emptied and M the largest number of them that can be
// given to nodes whose count rose without displacing anyone. 2E−M is the
// least any table with the same counts can move, and it is E (the leaving
// node's slots, when RF ≤ remaining nodes) whenever M = E. It also checks
// that the primaries that change are at least those the node held, and at
// most twice as many.
func checkLeave(t tb, prev, next Table, id string, nodes []Node, cfg Config) {
	t.Helper()
	r := min(cfg.ReplicationFactor, len(nodes))
	owners := make([][]string, len(prev))
	empty := make([]int, len(prev))
	held := 0
	for p, part := range prev {
		owners[p] = slices.DeleteFunc(slices.Clone(part.Owners), func(o string) bool { return o == id })
		if len(owners[p]) > r {
			owners[p] = owners[p][:r]
		}
		empty[p] = r - len(owners[p])
		if len(owners[p]) < len(part.Owners) {
			held++
		}
	}
	before, _ := tally(Table(partitionsOf(owners)), nodes)
	after, _ := tally(next, nodes)
	capacity := map[string]int{}
	for _, n := range nodes {
		if after[n.ID] < before[n.ID] {
			t.Fatalf("leave of %s: %s went from %d to %d slots", id, n.ID, before[n.ID], after[n.ID])
		}
		capacity[n.ID] = after[n.ID] - before[n.ID]
	}
	e := 0
	for _, k := range empty {
		e += k
	}
	m := maxMatching(owners, empty, capacity)
	moved, _ := Diff(prev, next)
	if moved != 2*e-m {
		t.Fatalf("leave of %s (held %d): moved %d slots, want 2E−M = 2·%d−%d", id, held, moved, e, m)
	}
}

func partitionsOf(owners [][]string) []Partition {
	out := make([]Partition, len(owners))
	for p, o := range owners {
		out[p].Owners = o
	}
	return out
}

// drawNodes draws up to maxNodes nodes with optional zones and weights.
func drawNodes(t *rapid.T, maxNodes int, zones, weights bool) []Node {
	n := rapid.IntRange(1, maxNodes).Draw(t, "nodes")
	zoneCount := rapid.IntRange(1, 5).Draw(t, "zones")
	nodes := make([]Node, n)
	for i := range nodes {
		nodes[i].ID = fmt.Sprintf("node-%02d", i)
		if zones {
			// Zone index zoneCount means "no zone".
			if z := rapid.IntRange(0, zoneCount).Draw(t, "zone"); z < zoneCount {
				nodes[i].Zone = fmt.Sprintf("zone-%d", z)
			}
		}
		if weights {
			nodes[i].Weight = rapid.IntRange(0, 10).Draw(t, "weight")
		}
	}
	return nodes
}

// TestPropertyZonesAndWeights checks guarantees 1, 4 and 5 (and the
// primary bounds) from scratch and across random changes of zoned,
// weighted nodes.
func TestPropertyZonesAndWeights(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := Config{
			Partitions:        drawPartitions(t),
			ReplicationFactor: rapid.IntRange(1, 5).Draw(t, "rf"),
		}
		all := drawNodes(t, 12, rapid.Bool().Draw(t, "zoned"), rapid.Bool().Draw(t, "weighted"))
		var tab Table
		for step := range rapid.IntRange(1, 4).Draw(t, "steps") {
			// Each step uses a random subset of the nodes.
			var nodes []Node
			for _, n := range all {
				if rapid.IntRange(0, 3).Draw(t, fmt.Sprintf("drop %d", step)) > 0 {
					nodes = append(nodes, n)
				}
			}
			if len(nodes) == 0 {
				continue
			}
			tab = mustCompute(t, tab, nodes, cfg)
			checkValid(t, tab, nodes, cfg)
			checkShares(t, tab, nodes, cfg)
		}
	})
}

// TestPropertyArbitraryPrev starts from garbage: unknown, repeated and
// surplus owners, arbitrary primaries. The result must still satisfy
// every guarantee, must not depend on node order, and must leave its
// inputs alone.
func TestPropertyArbitraryPrev(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := Config{
			Partitions:        rapid.IntRange(1, 200).Draw(t, "partitions"),
			ReplicationFactor: rapid.IntRange(1, 5).Draw(t, "rf"),
		}
		nodes := drawNodes(t, 10, rapid.Bool().Draw(t, "zoned"), rapid.Bool().Draw(t, "weighted"))
		pool := []string{"ghost", ""}
		for _, n := range nodes {
			pool = append(pool, n.ID)
		}
		prev := make(Table, cfg.Partitions)
		for p := range prev {
			prev[p].Owners = rapid.SliceOfN(rapid.SampledFrom(pool), 0, 7).Draw(t, "owners")
		}
		prevCopy, nodesCopy := cloneTable(prev), slices.Clone(nodes)

		tab := mustCompute(t, prev, nodes, cfg)
		checkValid(t, tab, nodes, cfg)
		checkShares(t, tab, nodes, cfg)
		if !reflect.DeepEqual(prev, prevCopy) || !reflect.DeepEqual(nodes, nodesCopy) {
			t.Fatalf("Compute modified its inputs")
		}
		shuffled := rapid.Permutation(nodes).Draw(t, "order")
		if again := mustCompute(t, prev, shuffled, cfg); !reflect.DeepEqual(again, tab) {
			t.Fatalf("result depends on the order of nodes")
		}
	})
}

// TestPropertyEvenWithAnyPrev checks guarantee 2 from arbitrary starting
// tables of equal-weight nodes without zones.
func TestPropertyEvenWithAnyPrev(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := Config{
			Partitions:        rapid.IntRange(1, 300).Draw(t, "partitions"),
			ReplicationFactor: rapid.IntRange(1, 5).Draw(t, "rf"),
		}
		nodes := makeNodes(rapid.IntRange(1, 10).Draw(t, "nodes"))
		prevNodes := makeNodes(rapid.IntRange(1, 12).Draw(t, "prev nodes"))
		prevCfg := cfg
		prevCfg.ReplicationFactor = rapid.IntRange(1, 5).Draw(t, "prev rf")
		prev := mustCompute(t, nil, prevNodes, prevCfg)
		tab := mustCompute(t, prev, nodes, cfg)
		checkValid(t, tab, nodes, cfg)
		checkEven(t, tab, nodes)
	})
}
