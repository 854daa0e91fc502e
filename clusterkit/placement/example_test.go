package placement_test

import (
	"fmt"

	"clusterkit.dev/clusterkit/placement"
)

func ExampleCompute() {
	cfg := placement.Config{Partitions: 8, ReplicationFactor: 2}
	nodes := []placement.Node{{ID: "a"}, {ID: "b"}, {ID: "c"}, {ID: "d"}}
	table, err := placement.Compute(nil, nodes, cfg)
	if err != nil {
		panic(err)
	}
	// A fifth node joins: it takes floor(8·2/5) = 3 slots, all moved from
	// the others, and becomes primary of its share of partitions.
	next, err := placement.Compute(table, append(nodes, placement.Node{ID: "e"}), cfg)
	if err != nil {
		panic(err)
	}
	moved, failovers := placement.Diff(table, next)
	st := placement.Summarize(next)
	fmt.Println("moved:", moved, "failovers:", failovers)
	for _, n := range st.Nodes {
		fmt.Printf("%s: %d slots, %d primaries\n", n.ID, n.Slots, n.Primaries)
	}
	// Output:
	// moved: 3 failovers: 1
	// a: 4 slots, 2 primaries
	// b: 3 slots, 1 primaries
	// c: 3 slots, 2 primaries
	// d: 3 slots, 2 primaries
	// e: 3 slots, 1 primaries
}
