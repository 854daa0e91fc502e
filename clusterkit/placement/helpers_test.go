package placement

import (
	"fmt"
	"math/big"
	"slices"
	"testing"
)

// tb is the part of testing.TB and rapid.T the checks use.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
}

// makeNodes returns n nodes with equal weights and no zones.
func makeNodes(n int) []Node {
	nodes := make([]Node, n)
	for i := range nodes {
		nodes[i] = Node{ID: fmt.Sprintf("node-%04d", i)}
	}
	return nodes
}

// without returns nodes less the one with the given ID.
func without(nodes []Node, id string) []Node {
	return slices.DeleteFunc(slices.Clone(nodes), func(n Node) bool { return n.ID == id })
}

// tally counts each node's slots and primaries in t, including nodes that
// own nothing.
func tally(t Table, nodes []Node) (slots, primaries map[string]int) {
	slots = make(map[string]int, len(nodes))
	primaries = make(map[string]int, len(nodes))
	for _, n := range nodes {
		slots[n.ID], primaries[n.ID] = 0, 0
	}
	for _, part := range t {
		for i, id := range part.Owners {
			slots[id]++
			if i == 0 {
				primaries[id]++
			}
		}
	}
	return slots, primaries
}

func spread(counts map[string]int) int {
	lo, hi, first := 0, 0, true
	for _, c := range counts {
		if first {
			lo, hi, first = c, c, false
		}
		lo, hi = min(lo, c), max(hi, c)
	}
	return hi - lo
}

// zoneGroups returns the zoning groups the contract is stated in: a zone,
// or a single node without a zone. ok reports whether there are at least
// min(RF, nodes) of them, so that owners must be zone-distinct.
func zoneGroups(nodes []Node, rf int) (group map[string]string, ok bool) {
	group = make(map[string]string, len(nodes))
	distinct := map[string]bool{}
	for _, n := range nodes {
		g := "zone:" + n.Zone
		if n.Zone == "" {
			g = "node:" + n.ID
		}
		group[n.ID] = g
		distinct[g] = true
	}
	return group, len(distinct) >= min(rf, len(nodes))
}

// checkValid checks guarantees 1 and 4: every partition has min(RF, nodes)
// distinct eligible owners (Owners[0] the primary), and owners are in
// distinct zones when there are enough zones.
func checkValid(t tb, tab Table, nodes []Node, cfg Config) {
	t.Helper()
	if len(tab) != cfg.Partitions {
		t.Fatalf("table has %d partitions, want %d", len(tab), cfg.Partitions)
	}
	eligible := map[string]bool{}
	for _, n := range nodes {
		eligible[n.ID] = true
	}
	want := min(cfg.ReplicationFactor, len(nodes))
	group, zoned := zoneGroups(nodes, cfg.ReplicationFactor)
	for p, part := range tab {
		if len(part.Owners) != want {
			t.Fatalf("partition %d has %d owners %v, want %d", p, len(part.Owners), part.Owners, want)
		}
		seen := map[string]bool{}
		for _, id := range part.Owners {
			if !eligible[id] {
				t.Fatalf("partition %d owner %q is not eligible", p, id)
			}
			key := id
			if zoned {
				key = group[id]
			}
			if seen[key] {
				t.Fatalf("partition %d owners %v repeat %q", p, part.Owners, key)
			}
			seen[key] = true
		}
	}
}

// checkEven checks guarantee 2: slot and primary counts each differ by at
// most one between any two nodes.
func checkEven(t tb, tab Table, nodes []Node) {
	t.Helper()
	slots, primaries := tally(tab, nodes)
	if d := spread(slots); d > 1 {
		t.Fatalf("slot counts spread by %d: %v", d, slots)
	}
	if d := spread(primaries); d > 1 {
		t.Fatalf("primary counts spread by %d: %v", d, primaries)
	}
}

// checkShares checks guarantee 5 and its zoned form: every node's slot
// count is the floor or ceiling of its fair share (refSlotShares), and its
// primary count the floor or ceiling of its fair primary share.
func checkShares(t tb, tab Table, nodes []Node, cfg Config) {
	t.Helper()
	slots, primaries := tally(tab, nodes)
	for id, share := range refSlotShares(nodes, cfg) {
		if !within(slots[id], share) {
			t.Fatalf("node %s owns %d slots, fair share %s", id, slots[id], share.FloatString(3))
		}
	}
	shares := refPrimaryShares(nodes, cfg.Partitions, slots)
	for id, share := range shares {
		if !within(primaries[id], share) && primariesFeasible(tab, shares) {
			t.Fatalf("node %s is primary of %d, fair share %s", id, primaries[id], share.FloatString(3))
		}
	}
}

// primariesFeasible reports whether the owners of t admit a choice of
// primaries that gives every node the floor or ceiling of its share. It
// solves the flow problem with lower bounds by the textbook reduction to a
// maximum flow (Ford–Fulkerson with DFS), independently of Compute.
func primariesFeasible(t Table, shares map[string]*big.Rat) bool {
	ids := make([]string, 0, len(shares))
	for id := range shares {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	index := map[string]int{}
	// Vertices: source s, sink k, super source ss, super sink tt, then
	// partitions, then nodes.
	const s, k, ss, tt = 0, 1, 2, 3
	part := func(p int) int { return 4 + p }
	node := func(i int) int { return 4 + len(t) + i }
	n := 4 + len(t) + len(ids)
	capacity := make([]map[int]int, n)
	for v := range capacity {
		capacity[v] = map[int]int{}
	}
	edge := func(a, b, c int) { capacity[a][b] += c }
	demand := 0
	for i, id := range ids {
		index[id] = i
		lo := new(big.Int).Quo(shares[id].Num(), shares[id].Denom())
		hi := int(lo.Int64())
		if !shares[id].IsInt() {
			hi++
		}
		// Edge node→k with bounds [lo, hi].
		edge(node(i), tt, int(lo.Int64()))
		edge(ss, k, int(lo.Int64()))
		edge(node(i), k, hi-int(lo.Int64()))
		demand += int(lo.Int64())
	}
	for p, partition := range t {
		// Edge s→p with bounds [1, 1].
		edge(ss, part(p), 1)
		edge(s, tt, 1)
		demand++
		for _, id := range partition.Owners {
			edge(part(p), node(index[id]), 1)
		}
	}
	edge(k, s, len(t)+1)
	var augment func(v int, seen []bool) bool
	augment = func(v int, seen []bool) bool {
		if v == tt {
			return true
		}
		seen[v] = true
		for w, c := range capacity[v] {
			if c > 0 && !seen[w] && augment(w, seen) {
				capacity[v][w]--
				capacity[w][v]++
				return true
			}
		}
		return false
	}
	flow := 0
	for augment(ss, make([]bool, n)) {
		flow++
	}
	return flow == demand
}

// within reports whether n is the floor or the ceiling of r.
func within(n int, r *big.Rat) bool {
	x := new(big.Rat).SetInt64(int64(n))
	diff := new(big.Rat).Sub(x, r)
	return diff.Cmp(big.NewRat(-1, 1)) > 0 && diff.Cmp(big.NewRat(1, 1)) < 0
}

func weightOf(n Node) int64 { return int64(max(n.Weight, 1)) }

// refSlotShares computes every node's exact fair share of the P·R slots,
// independently of the implementation: shares proportional to weight,
// except that a zoning group (or, without enough zones, a node) never
// exceeds P, the excess going to the others in proportion to weight.
func refSlotShares(nodes []Node, cfg Config) map[string]*big.Rat {
	r := min(cfg.ReplicationFactor, len(nodes))
	group, zoned := zoneGroups(nodes, cfg.ReplicationFactor)
	if !zoned {
		for _, n := range nodes {
			group[n.ID] = n.ID
		}
	}
	weights := map[string]int64{}
	for _, n := range nodes {
		weights[group[n.ID]] += weightOf(n)
	}
	caps := map[string]int64{}
	for g := range weights {
		caps[g] = int64(cfg.Partitions)
	}
	groupShare := fairShares(weights, caps, int64(cfg.Partitions*r))
	out := map[string]*big.Rat{}
	for _, n := range nodes {
		g := group[n.ID]
		out[n.ID] = new(big.Rat).Mul(groupShare[g], big.NewRat(weightOf(n), weights[g]))
	}
	return out
}

// refPrimaryShares computes every node's exact fair share of the P
// primaries: proportional to weight, capped at the slots it owns.
func refPrimaryShares(nodes []Node, partitions int, slots map[string]int) map[string]*big.Rat {
	weights, caps := map[string]int64{}, map[string]int64{}
	for _, n := range nodes {
		weights[n.ID] = weightOf(n)
		caps[n.ID] = int64(slots[n.ID])
	}
	return fairShares(weights, caps, int64(partitions))
}

// fairShares shares total in proportion to weights, capping each item at
// caps and giving the excess to the uncapped items, until nothing exceeds
// its cap.
func fairShares(weights, caps map[string]int64, total int64) map[string]*big.Rat {
	share := map[string]*big.Rat{}
	capped := map[string]bool{}
	for {
		rest := big.NewRat(total, 1)
		var restWeight int64
		for k, w := range weights {
			if capped[k] {
				rest.Sub(rest, big.NewRat(caps[k], 1))
			} else {
				restWeight += w
			}
		}
		more := false
		for k, w := range weights {
			if capped[k] {
				share[k] = big.NewRat(caps[k], 1)
				continue
			}
			share[k] = new(big.Rat).Mul(rest, big.NewRat(w, restWeight))
			if share[k].Cmp(big.NewRat(caps[k], 1)) > 0 {
				capped[k], more = true, true
			}
		}
		if !more {
			return share
		}
	}
}

// maxMatching returns the size of a maximum matching of empty slots to
// nodes: partition p has empty[p] empty slots, node id can take up to
// capacity[id] of them but at most one per partition, and none of a
// partition it already owns. Plain augmenting paths (Ford–Fulkerson on the
// unit-capacity network).
func maxMatching(owners [][]string, empty []int, capacity map[string]int) int {
	ids := make([]string, 0, len(capacity))
	for id, c := range capacity {
		if c > 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	type slot struct{ p int }
	var slots []slot
	for p, e := range empty {
		for range e {
			slots = append(slots, slot{p})
		}
	}
	assigned := make([]string, len(slots)) // node of each slot, "" if none
	load := map[string][]int{}             // slots matched to each node
	inPart := func(p int, id string) bool {
		if slices.Contains(owners[p], id) {
			return true
		}
		for _, s := range load[id] {
			if slots[s].p == p {
				return true
			}
		}
		return false
	}
	var try func(s int, visited map[string]bool) bool
	try = func(s int, visited map[string]bool) bool {
		p := slots[s].p
		for _, id := range ids {
			if visited[id] || inPart(p, id) {
				continue
			}
			visited[id] = true
			if len(load[id]) < capacity[id] {
				assigned[s] = id
				load[id] = append(load[id], s)
				return true
			}
			for i, other := range load[id] {
				// Reroute other elsewhere, then give its place to s.
				load[id] = slices.Delete(slices.Clone(load[id]), i, i+1)
				if try(other, visited) {
					assigned[s] = id
					load[id] = append(load[id], s)
					return true
				}
				load[id] = slices.Insert(load[id], i, other)
			}
		}
		return false
	}
	matched := 0
	for s := range slots {
		if try(s, map[string]bool{}) {
			matched++
		}
	}
	return matched
}

func TestPrimariesFeasible(t *testing.T) {
	tab := Table{{Owners: []string{"a", "b"}}}
	for _, c := range []struct {
		a, b *big.Rat
		want bool
	}{
		{big.NewRat(1, 1), big.NewRat(1, 1), false}, // both must lead the one partition
		{big.NewRat(1, 1), big.NewRat(0, 1), true},
		{big.NewRat(1, 2), big.NewRat(1, 2), true},
	} {
		shares := map[string]*big.Rat{"a": c.a, "b": c.b}
		if got := primariesFeasible(tab, shares); got != c.want {
			t.Errorf("primariesFeasible(a=%s, b=%s) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}
