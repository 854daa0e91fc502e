package placement

import (
	"cmp"
	"slices"
)

// transferScan is how many over-target nodes a transfer examines, at most,
// before settling for the best candidate found.
const transferScan = 8

// rebalance moves slots from nodes above their target to nodes below it,
// one slot at a time, until every node is at its target. Each move adds
// exactly one ownership pair, and a node only ever gains up to its target,
// so the moves are the fewest the targets allow.
//
// A move prefers partitions where it also helps the primaries: where the
// giver or the current primary has primaries to spare and the receiver
// lacks them, the receiver becomes primary in the same step; otherwise it
// takes a replica slot so that no primary changes. When no direct move
// exists, a shortest chain of moves through other nodes is used.
func (s *state) rebalance() {
	var over, under []int32
	for x := range int32(len(s.ids)) {
		switch d := s.deficit(x); {
		case d < 0:
			over = append(over, x)
		case d > 0:
			under = append(under, x)
		}
	}
	if len(under) == 0 {
		return
	}
	byNeed := func(a, b int32) int {
		// Largest imbalance first, then hash, then ID.
		if c := cmp.Compare(abs(s.deficit(b)), abs(s.deficit(a))); c != 0 {
			return c
		}
		if c := cmp.Compare(s.hash[a], s.hash[b]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	}
	s.undecided = 0
	for _, x := range s.prim {
		if x < 0 {
			s.undecided++
		}
	}
	slices.SortFunc(over, byNeed)
	slices.SortFunc(under, byNeed)
	cursor := 0
	for _, y := range under {
		s.relay = nil
		if s.pcount[y] < s.phi[y] {
			s.relay = s.relayDistances()
		}
		for s.deficit(y) > 0 {
			if !s.transfer(y, over, &cursor) && !s.transferChain(y) {
				break
			}
		}
	}
}

// transfer moves one slot directly from a node in over to y. It reports
// whether it found one. The scan of over starts at *cursor, so successive
// transfers take from different nodes, and each node's partitions are
// scanned from a point chosen by hash, so that the partitions taken are
// spread. It stops at the first candidate with the best score possible.
func (s *state) transfer(y int32, over []int32, cursor *int) bool {
	possible, relay := s.bestScorePossible(y)
	limit := possible * (len(s.ids) + 2)
	if !relay {
		s.relay = nil
	} else if possible == 2 {
		limit += len(s.ids)
	}
	bestScore, bestQ, bestJ, bestAt := -1, -1, -1, -1
	scanned := 0
	for i := 0; i < len(over) && scanned < transferScan && bestScore < limit; i++ {
		at := (*cursor + i) % len(over)
		x := over[at]
		if s.deficit(x) >= 0 {
			continue
		}
		l := s.list[x]
		off := int(pairHash(s.hash[y], uint64(len(s.list[y]))) % uint64(len(l)))
		found := false
		for k := range l {
			q := int(l[(off+k)%len(l)])
			j := s.slotOf(q, x)
			if !s.canPlace(q, j, y) {
				continue
			}
			found = true
			if score := s.rank(q, x, y); score > bestScore {
				bestScore, bestQ, bestJ, bestAt = score, q, j, at
				if score >= limit {
					break
				}
			}
		}
		if found {
			scanned++
		}
	}
	if bestScore < 0 {
		return false
	}
	*cursor = bestAt + 1
	s.move(bestQ, bestJ, y, bestScore >= 3*(len(s.ids)+2))
	return true
}

// rank orders candidate partitions for a transfer to y: by transferScore,
// and among those that change no primary, by how close q's primary is to
// a node with primaries to spare (see relayDistances), so that y can later
// receive a primary along a short chain.
func (s *state) rank(q int, x, y int32) int {
	score := s.transferScore(q, x, y) * (len(s.ids) + 2)
	if score == 2*(len(s.ids)+2) && s.relay != nil {
		if d := s.relay[s.prim[q]]; d > 0 {
			score += len(s.ids) + 1 - int(d)
		}
	}
	return score
}

// relayDistances returns, for each node, the length of the shortest chain
// of primary hand-overs from a node above its upper bound to it (0 for such
// nodes, -1 if unreachable), or nil if no node is above its upper bound.
// A hand-over goes from a partition's primary to another of its owners.
func (s *state) relayDistances() []int32 {
	n := len(s.ids)
	dist := make([]int32, n)
	var queue []int32
	for x := range n {
		dist[x] = -1
		if s.pcount[x] > s.phi[x] {
			dist[x] = 0
			queue = append(queue, int32(x))
		}
	}
	if len(queue) == 0 {
		return nil
	}
	// Partitions grouped by primary, by counting sort.
	start := make([]int32, n+1)
	for _, x := range s.prim {
		if x >= 0 {
			start[x+1]++
		}
	}
	for x := range n {
		start[x+1] += start[x]
	}
	byPrimary := make([]int32, start[n])
	next := slices.Clone(start[:n])
	for p, x := range s.prim {
		if x >= 0 {
			byPrimary[next[x]] = int32(p)
			next[x]++
		}
	}
	for i := 0; i < len(queue); i++ {
		a := queue[i]
		for _, p := range byPrimary[start[a]:start[a+1]] {
			for _, b := range s.owners(int(p)) {
				if dist[b] < 0 {
					dist[b] = dist[a] + 1
					queue = append(queue, b)
				}
			}
		}
	}
	return dist
}

// bestScorePossible bounds transferScore for transfers to y, so that the
// scan can stop as soon as it finds that score. relay reports whether y
// lacks primaries while some node has more than its upper bound, so that
// ranking by relay distance is worthwhile.
func (s *state) bestScorePossible(y int32) (score int, relay bool) {
	if s.pcount[y] >= s.phi[y] {
		return 2, false
	}
	overHi, overLo := false, false
	for x := range s.pcount {
		overHi = overHi || s.pcount[x] > s.phi[x]
		overLo = overLo || s.pcount[x] > s.plo[x]
	}
	switch {
	case overHi || s.undecided > 0:
		return 4, overHi
	case overLo && s.pcount[y] < s.plo[y]:
		return 3, false
	}
	return 2, false
}

// transferScore rates giving x's slot in q to y:
//
//	4  y becomes q's primary, taking it from a node above its upper bound
//	   (or q has no primary), and y is below its upper bound
//	3  y becomes q's primary, taking it from a node above its lower bound,
//	   and y is below its lower bound
//	2  no primary changes
//	0  x is q's primary and must hand over to someone
func (s *state) transferScore(q int, x, y int32) int {
	pr := s.prim[q]
	if pr < 0 {
		if s.pcount[y] < s.phi[y] {
			return 4
		}
		return 2
	}
	switch {
	case s.pcount[y] < s.phi[y] && s.pcount[pr] > s.phi[pr]:
		return 4
	case s.pcount[y] < s.plo[y] && s.pcount[pr] > s.plo[pr]:
		return 3
	case pr == x:
		return 0
	}
	return 2
}

// move gives slot j of q to y. If y takes the primary, it becomes q's
// primary; otherwise a leaving primary leaves q undecided.
func (s *state) move(q, j int, y int32, takePrimary bool) {
	x := s.own[q*s.r+j]
	pr := s.prim[q]
	s.replace(q, j, y)
	switch {
	case takePrimary:
		if pr >= 0 {
			s.pcount[pr]--
		} else {
			s.undecided--
		}
		s.prim[q] = y
		s.pcount[y]++
		s.tr.primary(q, RuleRebalance)
	case pr == x:
		s.prim[q] = -1
		s.pcount[x]--
		s.undecided++
	}
}

// transferChain moves one slot to y along a shortest chain x → … → y, each
// link giving one slot to the next, where x is above its target. It is the
// fallback when no over-target node can give to y directly.
func (s *state) transferChain(y int32) bool {
	epoch := s.nextEpoch()
	s.seen[y] = epoch
	frontier := []int32{y}
	for len(frontier) > 0 {
		var next []int32
		for q := range s.parts {
			for j, a := range s.owners(q) {
				if s.seen[a] == epoch {
					continue
				}
				for _, b := range frontier {
					if !s.canPlace(q, j, b) {
						continue
					}
					s.seen[a] = epoch
					s.via[a], s.from[a] = int32(q), b
					if s.deficit(a) < 0 {
						return s.applyChain(a, y)
					}
					next = append(next, a)
					break
				}
			}
		}
		frontier = next
	}
	return false
}

// applyChain performs the moves found by transferChain, starting at a. A
// link that no longer fits (an earlier link changed its partition) ends the
// chain early; the table stays valid and rebalance stops for y.
func (s *state) applyChain(a, y int32) bool {
	for a != y {
		q, b := int(s.via[a]), s.from[a]
		j := s.slotOf(q, a)
		if j < 0 || !s.canPlace(q, j, b) {
			return false
		}
		s.move(q, j, b, false)
		a = b
	}
	return true
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
