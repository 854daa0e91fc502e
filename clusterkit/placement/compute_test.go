package placement

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func mustCompute(t tb, prev Table, nodes []Node, cfg Config) Table {
	t.Helper()
	tab, err := Compute(prev, nodes, cfg)
	if err != nil {
		t.Fatalf("Compute: %v", err)
	}
	return tab
}

func TestComputeThreeNodesAllOwnEverything(t *testing.T) {
	nodes := makeNodes(3)
	cfg := Config{Partitions: 16, ReplicationFactor: 3}
	tab := mustCompute(t, nil, nodes, cfg)
	checkValid(t, tab, nodes, cfg)
	slots, primaries := tally(tab, nodes)
	for _, n := range nodes {
		if slots[n.ID] != 16 {
			t.Errorf("%s owns %d partitions, want all 16", n.ID, slots[n.ID])
		}
		if p := primaries[n.ID]; p != 5 && p != 6 {
			t.Errorf("%s is primary of %d partitions, want 5 or 6", n.ID, p)
		}
	}
}

func TestComputeTenNodes(t *testing.T) {
	nodes := makeNodes(10)
	cfg := Config{Partitions: 64, ReplicationFactor: 3}
	tab := mustCompute(t, nil, nodes, cfg)
	checkValid(t, tab, nodes, cfg)
	slots, primaries := tally(tab, nodes)
	for _, n := range nodes {
		// 64·3/10 = 19.2 slots and 64/10 = 6.4 primaries per node.
		if s := slots[n.ID]; s != 19 && s != 20 {
			t.Errorf("%s owns %d slots, want 19 or 20", n.ID, s)
		}
		if p := primaries[n.ID]; p != 6 && p != 7 {
			t.Errorf("%s is primary of %d, want 6 or 7", n.ID, p)
		}
	}

	// An eleventh node takes floor(192/11) = 17 slots, all moved from
	// others, and its primaries are the only primaries that change.
	joined := append(slices.Clone(nodes), Node{ID: "node-new"})
	next := mustCompute(t, tab, joined, cfg)
	checkValid(t, next, joined, cfg)
	checkEven(t, next, joined)
	slots, primaries = tally(next, joined)
	moved, changed := Diff(tab, next)
	if slots["node-new"] != 17 || moved != 17 {
		t.Errorf("join: new node owns %d, moved %d; want 17 and 17", slots["node-new"], moved)
	}
	if changed != primaries["node-new"] {
		t.Errorf("join: %d primaries changed, want the new node's %d", changed, primaries["node-new"])
	}

	// When it leaves again, exactly its 17 slots move.
	back := mustCompute(t, next, nodes, cfg)
	checkValid(t, back, nodes, cfg)
	checkEven(t, back, nodes)
	if moved, _ := Diff(next, back); moved != 17 {
		t.Errorf("leave: moved %d slots, want the 17 the node owned", moved)
	}
}

func TestComputeUnequalZones(t *testing.T) {
	// Zone b has one node and RF=2: every partition needs one owner outside
	// zone a, so b's node owns every partition and a's nodes share the
	// other P slots. Zones win over slot balance.
	nodes := []Node{
		{ID: "a1", Zone: "a"}, {ID: "a2", Zone: "a"}, {ID: "a3", Zone: "a"},
		{ID: "b1", Zone: "b"},
	}
	cfg := Config{Partitions: 12, ReplicationFactor: 2}
	tab := mustCompute(t, nil, nodes, cfg)
	checkValid(t, tab, nodes, cfg)
	slots, primaries := tally(tab, nodes)
	want := map[string]int{"a1": 4, "a2": 4, "a3": 4, "b1": 12}
	if !reflect.DeepEqual(slots, want) {
		t.Errorf("slots = %v, want %v", slots, want)
	}
	// Primaries still follow weight: 12/4 = 3 each.
	for id, p := range primaries {
		if p != 3 {
			t.Errorf("%s is primary of %d, want 3", id, p)
		}
	}
}

func TestComputeWeights(t *testing.T) {
	nodes := []Node{{ID: "small", Weight: 1}, {ID: "medium", Weight: 2}, {ID: "large", Weight: 3}}
	cfg := Config{Partitions: 60, ReplicationFactor: 1}
	tab := mustCompute(t, nil, nodes, cfg)
	checkValid(t, tab, nodes, cfg)
	slots, _ := tally(tab, nodes)
	want := map[string]int{"small": 10, "medium": 20, "large": 30}
	if !reflect.DeepEqual(slots, want) {
		t.Errorf("slots = %v, want %v", slots, want)
	}
}

func TestComputeWeightCappedAtOneSlotPerPartition(t *testing.T) {
	// With RF=2 the heavy node's share would be 2·10·8/10 = 16 slots, but it
	// can own each of the 10 partitions only once; the others share the
	// remaining 10.
	nodes := []Node{{ID: "heavy", Weight: 8}, {ID: "x", Weight: 1}, {ID: "y", Weight: 1}}
	cfg := Config{Partitions: 10, ReplicationFactor: 2}
	tab := mustCompute(t, nil, nodes, cfg)
	checkValid(t, tab, nodes, cfg)
	checkShares(t, tab, nodes, cfg)
	slots, _ := tally(tab, nodes)
	if slots["heavy"] != 10 || slots["x"] != 5 || slots["y"] != 5 {
		t.Errorf("slots = %v, want heavy 10, x 5, y 5", slots)
	}
}

func TestComputeFewerNodesThanRF(t *testing.T) {
	nodes := makeNodes(2)
	cfg := Config{Partitions: 8, ReplicationFactor: 3}
	tab := mustCompute(t, nil, nodes, cfg)
	checkValid(t, tab, nodes, cfg)
	checkEven(t, tab, nodes)
}

func TestComputeNoNodes(t *testing.T) {
	cfg := Config{Partitions: 5, ReplicationFactor: 3}
	prev := mustCompute(t, nil, makeNodes(3), cfg)
	for _, start := range []Table{nil, prev} {
		tab := mustCompute(t, start, nil, cfg)
		if len(tab) != 5 {
			t.Fatalf("got %d partitions, want 5", len(tab))
		}
		for p, part := range tab {
			if len(part.Owners) != 0 {
				t.Errorf("partition %d has owners %v, want none", p, part.Owners)
			}
		}
	}
}

func TestComputeCleansPrev(t *testing.T) {
	nodes := makeNodes(4)
	cfg := Config{Partitions: 4, ReplicationFactor: 2}
	prev := Table{
		{Owners: []string{"node-0000", "node-0000", "node-0001"}}, // repeated owner
		{Owners: []string{"gone", "node-0001"}},                   // ineligible primary
		{Owners: []string{"node-0002", "node-0003", "node-0000"}}, // beyond RF
		{},
	}
	tab := mustCompute(t, prev, nodes, cfg)
	checkValid(t, tab, nodes, cfg)
	checkEven(t, tab, nodes)
	if got := tab[0].Owners; !slices.Equal(got, []string{"node-0000", "node-0001"}) {
		t.Errorf("partition 0 = %v, want the two valid owners kept in order", got)
	}
	if got := tab[2].Owners; !slices.Equal(got, []string{"node-0002", "node-0003"}) {
		t.Errorf("partition 2 = %v, want the first two owners", got)
	}
	if !slices.Contains(tab[1].Owners, "node-0001") {
		t.Errorf("partition 1 = %v, want node-0001 kept", tab[1].Owners)
	}
}

func TestComputeStable(t *testing.T) {
	nodes := makeNodes(7)
	cfg := Config{Partitions: 271, ReplicationFactor: 3}
	tab := mustCompute(t, nil, nodes, cfg)
	again := mustCompute(t, tab, nodes, cfg)
	if !reflect.DeepEqual(tab, again) {
		moved, changed := Diff(tab, again)
		t.Errorf("recomputing a balanced table moved %d slots and %d primaries", moved, changed)
	}
}

func TestComputeDeterministic(t *testing.T) {
	nodes := []Node{
		{ID: "c", Zone: "z1", Weight: 2}, {ID: "a", Zone: "z2"}, {ID: "e", Zone: "z1"},
		{ID: "b", Zone: "z3", Weight: 3}, {ID: "d"},
	}
	cfg := Config{Partitions: 97, ReplicationFactor: 3}
	prev := mustCompute(t, nil, nodes[:3], cfg)
	prevCopy := cloneTable(prev)
	nodesCopy := slices.Clone(nodes)

	want := mustCompute(t, prev, nodes, cfg)
	reversed := slices.Clone(nodes)
	slices.Reverse(reversed)
	if got := mustCompute(t, prev, reversed, cfg); !reflect.DeepEqual(got, want) {
		t.Error("result depends on the order of nodes")
	}
	if got := mustCompute(t, prev, nodes, cfg); !reflect.DeepEqual(got, want) {
		t.Error("result differs between identical calls")
	}
	if !reflect.DeepEqual(prev, prevCopy) || !reflect.DeepEqual(nodes, nodesCopy) {
		t.Error("Compute modified its inputs")
	}
}

func cloneTable(t Table) Table {
	out := make(Table, len(t))
	for p, part := range t {
		out[p].Owners = slices.Clone(part.Owners)
	}
	return out
}

func TestComputeResultOwnersDoNotAlias(t *testing.T) {
	nodes := makeNodes(3)
	cfg := Config{Partitions: 4, ReplicationFactor: 2}
	tab := mustCompute(t, nil, nodes, cfg)
	want := cloneTable(tab)
	_ = append(tab[0].Owners, "extra")
	if !reflect.DeepEqual(tab[1:], want[1:]) {
		t.Error("appending to one partition's Owners changed another partition")
	}
}

func TestComputeErrors(t *testing.T) {
	good := Config{Partitions: 4, ReplicationFactor: 2}
	tests := []struct {
		name  string
		prev  Table
		nodes []Node
		cfg   Config
		want  string
	}{
		{"zero partitions", nil, makeNodes(1), Config{ReplicationFactor: 1}, "Config.Partitions"},
		{"negative rf", nil, makeNodes(1), Config{Partitions: 1, ReplicationFactor: -1}, "Config.ReplicationFactor"},
		{"zero rf", nil, makeNodes(1), Config{Partitions: 1}, "Config.ReplicationFactor"},
		{"empty id", nil, []Node{{ID: "a"}, {}}, good, "nodes[1].ID"},
		{"duplicate id", nil, []Node{{ID: "a"}, {ID: "b"}, {ID: "a"}}, good, "nodes[2].ID"},
		{"negative weight", nil, []Node{{ID: "a", Weight: -2}}, good, "nodes[0].Weight"},
		{"huge weight", nil, []Node{{ID: "a", Weight: MaxWeight + 1}}, good, "nodes[0].Weight"},
		{"prev length", make(Table, 3), makeNodes(1), good, "Config.Partitions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compute(tt.prev, tt.nodes, tt.cfg)
			if err == nil {
				t.Fatal("Compute succeeded, want an error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not name %s", msg, tt.want)
			}
			if msg != strings.ToLower(msg[:1])+msg[1:] || strings.HasSuffix(msg, ".") {
				t.Errorf("error %q should start lower-case and not end with punctuation", msg)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{Partitions: 1, ReplicationFactor: 1}).Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
	if err := (Config{Partitions: 1 << 40, ReplicationFactor: 1}).Validate(); err == nil {
		t.Error("Partitions beyond math.MaxInt32 accepted")
	}
}

func TestComputeLeaveWithoutMatching(t *testing.T) {
	// A must gain a slot when L leaves, but A owns every partition L leaves
	// empty, so one slot moves twice: 4 moves for L's 3 slots, the least
	// possible (see DESIGN.md, guarantee 3).
	cfg := Config{Partitions: 6, ReplicationFactor: 2}
	prev := Table{
		{Owners: []string{"L", "A"}}, {Owners: []string{"L", "A"}}, {Owners: []string{"L", "A"}},
		{Owners: []string{"B", "C"}}, {Owners: []string{"B", "C"}}, {Owners: []string{"B", "C"}},
	}
	nodes := []Node{{ID: "A"}, {ID: "B"}, {ID: "C"}}
	next := mustCompute(t, prev, nodes, cfg)
	checkValid(t, next, nodes, cfg)
	checkEven(t, next, nodes)
	if moved, _ := Diff(prev, next); moved != 4 {
		t.Errorf("moved %d slots, want 4", moved)
	}
}
