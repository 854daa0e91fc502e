package placement

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
)

// fuzzMaxPartitions bounds the tables FuzzCompute computes, so that every
// input runs in milliseconds; larger valid counts only check validation.
const fuzzMaxPartitions = 256

// fuzzNodes builds up to 16 nodes from spec, two bytes a node: the first
// picks the zone (its value mod 4, 0 meaning none), or with 0xff an empty
// ID, or with 0xfe the previous node's ID; the second picks the weight:
// its value mod 8, or 0xff -1, 0xfe MaxWeight, 0xfd MaxWeight+1.
func fuzzNodes(spec []byte) []Node {
	nodes := make([]Node, 0, min(len(spec)/2, 16))
	for i := 0; i+1 < len(spec) && len(nodes) < 16; i += 2 {
		z, w := spec[i], spec[i+1]
		n := Node{ID: fmt.Sprintf("n%02d", len(nodes))}
		switch {
		case z == 0xff:
			n.ID = ""
		case z == 0xfe && len(nodes) > 0:
			n.ID = nodes[len(nodes)-1].ID
		case z%4 != 0:
			n.Zone = fmt.Sprintf("z%d", z%4)
		}
		switch w {
		case 0xff:
			n.Weight = -1
		case 0xfe:
			n.Weight = MaxWeight
		case 0xfd:
			n.Weight = MaxWeight + 1
		default:
			n.Weight = int(w % 8)
		}
		nodes = append(nodes, n)
	}
	return nodes
}

// fuzzPrev builds a previous table from spec: nil when spec is empty;
// otherwise partitions entries (one more when spec[0] is 0xff), whose
// owners the following bytes name in turn, 0xfe moving on to the next
// partition. An owner byte picks a node, an unknown "ghost" or "".
func fuzzPrev(spec []byte, partitions int, nodes []Node) Table {
	if len(spec) == 0 {
		return nil
	}
	n := partitions
	if spec[0] == 0xff {
		n++
	}
	prev := make(Table, n)
	pool := []string{"ghost", ""}
	for _, nd := range nodes {
		pool = append(pool, nd.ID)
	}
	p := 0
	for _, b := range spec[1:] {
		if p >= n {
			break
		}
		if b == 0xfe {
			p++
			continue
		}
		prev[p].Owners = append(prev[p].Owners, pool[int(b)%len(pool)])
	}
	return prev
}

// FuzzCompute builds a config, nodes (zones, weights, invalid IDs and
// weights) and a previous table (unknown, repeated and surplus owners, a
// wrong length) from the fuzzer's input. Compute must refuse exactly the
// invalid inputs, and otherwise return a table with every guarantee of
// DESIGN.md that applies to the input, without touching its arguments.
func FuzzCompute(f *testing.F) {
	f.Add(16, 3, []byte{0, 0, 0, 0, 0, 0}, []byte{})
	f.Add(12, 2, []byte{1, 0, 1, 0, 1, 0, 2, 0}, []byte{0})
	f.Add(64, 3, []byte{1, 1, 2, 3, 3, 5, 1, 0, 0, 7}, []byte{0, 2, 3, 4, 0xfe, 0, 1, 5, 5, 6, 0xfe, 3})
	f.Add(4, 2, []byte{0, 1, 0, 1, 0, 7, 0, 7}, []byte{0xff, 2, 3})
	f.Add(0, 1, []byte{0, 0}, []byte{})
	f.Add(8, -1, []byte{0xff, 0}, []byte{})
	f.Add(8, 2, []byte{0, 0, 0xfe, 0, 0, 0xfd}, []byte{})
	f.Add(30, 5, []byte{}, []byte{0, 0, 1})
	f.Fuzz(func(t *testing.T, partitions, rf int, nodeSpec, prevSpec []byte) {
		cfg := Config{Partitions: partitions, ReplicationFactor: rf}
		cfgErr := cfg.Validate()
		if cfgErr == nil && partitions > fuzzMaxPartitions {
			return
		}
		nodes := fuzzNodes(nodeSpec)
		prev := fuzzPrev(prevSpec, max(min(partitions, fuzzMaxPartitions), 0), nodes)
		var prevCopy Table
		if prev != nil {
			prevCopy = cloneTable(prev)
		}
		nodesCopy := slices.Clone(nodes)

		tab, err := Compute(prev, nodes, cfg)
		if !reflect.DeepEqual(prev, prevCopy) || !reflect.DeepEqual(nodes, nodesCopy) {
			t.Fatalf("Compute modified its inputs")
		}
		if want := fuzzInvalid(cfgErr, prev, nodes, cfg); (err != nil) != (want != "") {
			t.Fatalf("Compute error %v; invalid input: %q", err, want)
		}
		if err != nil {
			return
		}
		checkValid(t, tab, nodes, cfg)
		checkShares(t, tab, nodes, cfg)
		reversed := slices.Clone(nodes)
		slices.Reverse(reversed)
		if again := mustCompute(t, prev, reversed, cfg); !reflect.DeepEqual(again, tab) {
			t.Fatalf("result depends on the order of nodes")
		}
		if !fuzzEqualWeightsNoZones(nodes) {
			return
		}
		checkEven(t, tab, nodes)
		if again := mustCompute(t, tab, nodes, cfg); !reflect.DeepEqual(again, tab) {
			moved, changed := Diff(tab, again)
			t.Fatalf("recomputing a table with the same nodes moved %d slots and %d primaries", moved, changed)
		}
	})
}

// fuzzInvalid says why Compute must refuse its input, or "".
func fuzzInvalid(cfgErr error, prev Table, nodes []Node, cfg Config) string {
	if cfgErr != nil {
		return cfgErr.Error()
	}
	if len(prev) != 0 && len(prev) != cfg.Partitions {
		return "prev has the wrong length"
	}
	seen := map[string]bool{}
	for _, n := range nodes {
		switch {
		case n.ID == "":
			return "empty ID"
		case seen[n.ID]:
			return "repeated ID"
		case n.Weight < 0 || n.Weight > MaxWeight:
			return "weight out of range"
		}
		seen[n.ID] = true
	}
	return ""
}

// fuzzEqualWeightsNoZones reports whether guarantees 2 and 3 apply: equal
// weights (0 counting as 1) and no zones.
func fuzzEqualWeightsNoZones(nodes []Node) bool {
	for _, n := range nodes {
		if n.Zone != "" || weightOf(n) != weightOf(nodes[0]) {
			return false
		}
	}
	return true
}
