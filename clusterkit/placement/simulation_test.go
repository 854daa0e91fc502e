package placement

import (
	"fmt"
	"slices"
	"testing"
)

// TestSimulationLargeCluster runs a 1,000-node cluster with 65,536
// partitions and RF 3 through joins and leaves, checking every guarantee
// at each step. It is skipped with -short.
func TestSimulationLargeCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("large simulation skipped in short mode")
	}
	cfg := Config{Partitions: 65536, ReplicationFactor: 3}
	nodes := makeNodes(1000)
	tab := mustCompute(t, nil, nodes, cfg)
	checkValid(t, tab, nodes, cfg)
	checkEven(t, tab, nodes)

	steps := []string{"join", "leave node-0500", "join", "leave node-0001", "leave node-0999", "join"}
	nextID := len(nodes)
	for _, step := range steps {
		var next Table
		if step == "join" {
			id := fmt.Sprintf("node-%04d", nextID)
			nextID++
			joined := append(slices.Clone(nodes), Node{ID: id})
			next = mustCompute(t, tab, joined, cfg)
			checkJoin(t, tab, next, joined, cfg)
			_, primaries := tally(next, joined)
			moved, changed := Diff(tab, next)
			t.Logf("join of %s: %d slots moved, %d primaries changed (its own %d)", id, moved, changed, primaries[id])
			if changed != primaries[id] {
				t.Errorf("join of %s: %d primaries changed, want its own %d", id, changed, primaries[id])
			}
			nodes = joined
		} else {
			var id string
			fmt.Sscanf(step, "leave %s", &id)
			rest := without(nodes, id)
			next = mustCompute(t, tab, rest, cfg)
			checkLeave(t, tab, next, id, rest, cfg)
			slots, primaries := tally(tab, nodes)
			moved, changed := Diff(tab, next)
			t.Logf("leave of %s: %d slots moved (it owned %d), %d primaries changed (it held %d)",
				id, moved, slots[id], changed, primaries[id])
			if moved != slots[id] || changed > primaries[id]+1 {
				t.Errorf("leave of %s: want %d slots moved and at most %d primaries changed", id, slots[id], primaries[id]+1)
			}
			nodes = rest
		}
		checkValid(t, next, nodes, cfg)
		checkEven(t, next, nodes)
		tab = next
	}
}

// TestSimulationZonedCluster checks zone spreading on a large cluster: 30
// nodes in 3 zones of unequal size.
func TestSimulationZonedCluster(t *testing.T) {
	cfg := Config{Partitions: 4096, ReplicationFactor: 3}
	var nodes []Node
	for i := range 30 {
		zone := "zone-a"
		switch {
		case i >= 20:
			zone = "zone-c"
		case i >= 6:
			zone = "zone-b"
		}
		nodes = append(nodes, Node{ID: fmt.Sprintf("node-%02d", i), Zone: zone})
	}
	tab := mustCompute(t, nil, nodes, cfg)
	checkValid(t, tab, nodes, cfg)
	checkShares(t, tab, nodes, cfg)
	// Every zone holds one replica of every partition, so zone-a's 6 nodes
	// own 4096/6 slots each and zone-b's 14 own 4096/14.
	slots, _ := tally(tab, nodes)
	if s := slots["node-00"]; s != 682 && s != 683 {
		t.Errorf("zone-a node owns %d slots, want 682 or 683", s)
	}
	next := mustCompute(t, tab, without(nodes, "node-25"), cfg)
	checkValid(t, next, without(nodes, "node-25"), cfg)
	checkShares(t, next, without(nodes, "node-25"), cfg)
}
