package placement

// choosePrimaries gives every partition a primary among its owners and
// balances primary counts within each node's bounds [plo, phi].
//
// A partition keeps its current primary when it still owns the partition.
// A partition without one takes the owner furthest below its bounds. Then
// any node above its upper bound hands primaries, and any node below its
// lower bound receives them, each along a shortest path of partitions
// (a hands p to b, b hands p' to c, ...) so that the fewest primaries
// change; partitions whose primary has already changed are tried first.
func (s *state) choosePrimaries() {
	for p := range s.parts {
		if s.prim[p] >= 0 {
			continue
		}
		best, bestKey := int32(-1), 0
		var bestHash uint64
		for _, x := range s.owners(p) {
			key := s.primaryNeed(x)
			h := pairHash(uint64(p), s.hash[x])
			if best < 0 || key > bestKey || key == bestKey && h < bestHash {
				best, bestKey, bestHash = x, key, h
			}
		}
		s.prim[p] = best
		s.pcount[best]++
		s.tr.primary(p, RuleFewestPrimaries)
	}

	// Index each node's primaries for the searches.
	plist := make([][]int32, len(s.ids))
	ppos := make([]int32, s.parts)
	for p, x := range s.prim {
		ppos[p] = int32(len(plist[x]))
		plist[x] = append(plist[x], int32(p))
	}
	b := balancer{s: s, plist: plist, ppos: ppos}
	for x := range int32(len(s.ids)) {
		for s.pcount[x] > s.phi[x] && b.push(x) {
		}
	}
	for y := range int32(len(s.ids)) {
		for s.pcount[y] < s.plo[y] && b.pull(y) {
		}
	}
}

// primaryNeed ranks how much x wants another primary: 2 below its lower
// bound, 1 below its upper bound, 0 otherwise.
func (s *state) primaryNeed(x int32) int {
	switch {
	case s.pcount[x] < s.plo[x]:
		return 2
	case s.pcount[x] < s.phi[x]:
		return 1
	}
	return 0
}

// balancer moves primaries between owners of the same partition.
type balancer struct {
	s     *state
	plist [][]int32 // partitions whose primary each node is
	ppos  []int32   // index of each partition in its primary's plist
}

// set makes b the primary of p.
func (bl *balancer) set(p int, b int32) {
	s := bl.s
	a := s.prim[p]
	l := bl.plist[a]
	i := bl.ppos[p]
	last := l[len(l)-1]
	l[i] = last
	bl.ppos[last] = i
	bl.plist[a] = l[:len(l)-1]
	bl.ppos[p] = int32(len(bl.plist[b]))
	bl.plist[b] = append(bl.plist[b], int32(p))
	s.prim[p] = b
	s.pcount[a]--
	s.pcount[b]++
	s.tr.primary(p, RulePrimaryBalance)
}

// push moves one primary away from x to a node below its upper bound, by a
// shortest path. It reports whether it found one.
func (bl *balancer) push(x int32) bool {
	s := bl.s
	epoch := s.nextEpoch()
	s.seen[x] = epoch
	queue := []int32{x}
	for i := 0; i < len(queue); i++ {
		a := queue[i]
		for pass := range 2 {
			for _, p := range bl.plist[a] {
				// Pass 0: partitions whose primary already changed.
				if (s.prevPrim[p] != a) != (pass == 0) {
					continue
				}
				for _, b := range s.owners(int(p)) {
					if s.seen[b] == epoch {
						continue
					}
					s.seen[b] = epoch
					s.from[b], s.via[b] = a, p
					if s.pcount[b] < s.phi[b] {
						for b != x {
							a := s.from[b]
							bl.set(int(s.via[b]), b)
							b = a
						}
						return true
					}
					queue = append(queue, b)
				}
			}
		}
	}
	return false
}

// pull moves one primary to y from a node above its lower bound, by a
// shortest path. It reports whether it found one.
func (bl *balancer) pull(y int32) bool {
	s := bl.s
	epoch := s.nextEpoch()
	s.seen[y] = epoch
	queue := []int32{y}
	for i := 0; i < len(queue); i++ {
		b := queue[i]
		for pass := range 2 {
			for _, p := range s.list[b] {
				a := s.prim[p]
				if s.seen[a] == epoch || (s.prevPrim[p] != a) != (pass == 0) {
					continue
				}
				s.seen[a] = epoch
				s.from[a], s.via[a] = b, p
				if s.pcount[a] > s.plo[a] {
					for a != y {
						b := s.from[a]
						bl.set(int(s.via[a]), b)
						a = b
					}
					return true
				}
				queue = append(queue, a)
			}
		}
	}
	return false
}
