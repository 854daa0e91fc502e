package placement

// augmentBudget bounds the work of the fill's augmenting-path searches in
// one Compute. They only run when the greedy fill gets stuck, which is rare;
// the bound keeps pathological inputs fast, and the fallback after it keeps
// the result correct.
const augmentBudget = 1 << 22

// fill gives every empty slot an owner, using nodes below their target.
//
// Partitions with the most empty slots go first. Each slot goes to the
// group furthest below its target (then, within the group, the node
// furthest below), skipping groups already in the partition; ties are
// broken pseudo-randomly by the partition number so that co-owners spread
// evenly. Starting from an empty table this greedy never gets stuck: while
// every group's remaining deficit is at most the number of partitions left,
// taking the r largest keeps it so (the argument behind the Gale–Ryser
// theorem). Starting from a partial table it can get stuck; then an
// augmenting path moves earlier fills to make room, and failing that a swap
// with an existing owner is made (which costs one extra moved slot).
func (s *state) fill() {
	byEmpty := make([][]int32, s.r+1)
	for p := range s.parts {
		if e := s.r - int(s.size[p]); e > 0 {
			byEmpty[e] = append(byEmpty[e], int32(p))
		}
	}
	keys := make([]int, len(s.members))
	for x := range s.ids {
		if d := s.deficit(int32(x)); d > 0 {
			keys[s.group[x]] += d
		}
	}
	s.queue = newBucketQueue(keys)
	s.fills = make([][]int32, len(s.ids))
	s.onPath = make([]bool, s.parts)
	s.budget = augmentBudget
	// First every empty slot gets a node below its target if the slots
	// can be matched to such nodes at all (a maximum matching, by Kuhn's
	// algorithm seeded with the greedy choice). Only the slots left over
	// fall back to swaps, which use capacity no matched slot needed.
	var stuck []int32
	for e := s.r; e > 0; e-- {
		for _, p := range byEmpty[e] {
			for range s.r - int(s.size[p]) {
				if !s.fillSlot(int(p)) {
					stuck = append(stuck, p)
				}
			}
		}
	}
	for _, p := range stuck {
		s.tr.phase(RuleZoneSwap)
		if !s.swapInto(int(p)) {
			s.tr.phase(RuleOverfill)
			s.overfill(int(p))
		}
	}
	s.queue, s.fills, s.onPath = nil, nil, nil
}

// fillSlot gives partition p one more owner below its target, if it can
// without displacing any prev owner.
func (s *state) fillSlot(p int) bool {
	if x := s.pickGreedy(p); x >= 0 {
		s.add(p, x)
		s.fills[x] = append(s.fills[x], int32(p))
		return true
	}
	if s.budget <= 0 {
		return false
	}
	s.nextEpoch()
	return s.augment(p, int(s.size[p]))
}

// pickGreedy returns the node for a new slot of p, or -1 if every node
// below its target is in a group already in p. Among the groups furthest
// below target it prefers, in order, a node whose zone p lacks (when zones
// are only a preference) and, when p has lost its primary, a node that
// lacks primaries more than p's other owners, which then becomes p's
// primary (otherwise the neediest owner does). Deciding primaries here,
// while filling, spreads the lost primaries to the nodes that need them.
func (s *state) pickGreedy(p int) int32 {
	h := pairHash(uint64(p), uint64(s.size[p]))
	j := int(s.size[p])
	orphan := s.prim[p] < 0
	owner, ownerNeed := int32(-1), 0
	if orphan {
		owner, ownerNeed = s.neediestOwner(p)
	}
	for k := s.queue.top; k > 0; k-- {
		block := s.queue.block(k)
		if len(block) == 0 {
			continue
		}
		start := int(h % uint64(len(block)))
		best, bestRank := int32(-1), -1
		for i := range block {
			g := block[(start+i)%len(block)]
			if !s.canPlace(p, j, s.members[g][0]) {
				continue
			}
			x := s.neediest(g, h)
			rank := 0
			if !s.softZones || s.zoneFree(p, x) {
				rank += 2
			}
			if !orphan || ownerNeed == 2 || s.primaryNeed(x) > ownerNeed {
				rank++
			}
			if rank > bestRank {
				best, bestRank = x, rank
				if rank == 3 {
					break
				}
			}
		}
		if best >= 0 {
			if orphan {
				switch {
				case s.primaryNeed(best) > ownerNeed:
					s.prim[p] = best
					s.pcount[best]++
					s.tr.primary(p, RuleFill)
				case ownerNeed > 0:
					s.prim[p] = owner
					s.pcount[owner]++
					s.tr.primary(p, RuleFill)
				}
			}
			return best
		}
	}
	return -1
}

// neediestOwner returns the owner of p that most lacks primaries, and its
// primaryNeed; ties go to the lowest hash of (p, owner).
func (s *state) neediestOwner(p int) (int32, int) {
	best, bestNeed := int32(-1), -1
	var bestHash uint64
	for _, x := range s.owners(p) {
		need, h := s.primaryNeed(x), pairHash(uint64(p), s.hash[x])
		if need > bestNeed || need == bestNeed && h < bestHash {
			best, bestNeed, bestHash = x, need, h
		}
	}
	return best, max(bestNeed, 0)
}

// neediest returns the member of group g furthest below its target; ties
// go to the first from a position chosen by h.
func (s *state) neediest(g int32, h uint64) int32 {
	m := s.members[g]
	if len(m) == 1 {
		return m[0]
	}
	start := int(h % uint64(len(m)))
	best := m[start]
	for i := 1; i < len(m); i++ {
		if x := m[(start+i)%len(m)]; s.deficit(x) > s.deficit(best) {
			best = x
		}
	}
	return best
}

// augment finds an owner for slot j of p (a new slot if j == size[p],
// otherwise replacing the occupant, which is moving elsewhere). It takes a
// node below its target if one fits; otherwise it moves a node that this
// fill placed elsewhere, refilling that slot recursively. Every node is
// tried at most once per search, as in Kuhn's matching algorithm, so a
// search succeeds when an augmenting path exists. No prev owner is
// displaced, so a success costs no extra moved slot.
//
// A path never passes through a partition twice: the check that x fits
// slot j of p is made before the rest of the path is placed, so the rest
// must leave p alone, or it could put a node of x's group into p.
func (s *state) augment(p, j int) bool {
	n := len(s.ids)
	start := int(pairHash(uint64(p), uint64(j)) % uint64(n))
	occupant := int32(-1)
	if j < int(s.size[p]) {
		occupant = s.own[p*s.r+j]
	}
	for i := range n {
		x := int32((start + i) % n)
		if s.budget--; s.budget < 0 {
			return false
		}
		if x != occupant && s.deficit(x) > 0 && s.canPlace(p, j, x) {
			s.put(p, j, x)
			s.fills[x] = append(s.fills[x], int32(p))
			return true
		}
	}
	s.onPath[p] = true
	defer func() { s.onPath[p] = false }()
	for i := range n {
		x := int32((start + i) % n)
		if s.seen[x] == s.epoch || x == occupant || len(s.fills[x]) == 0 || !s.canPlace(p, j, x) {
			continue
		}
		s.seen[x] = s.epoch
		for k, q := range s.fills[x] {
			if s.budget--; s.budget < 0 {
				return false
			}
			if s.onPath[q] {
				continue
			}
			if s.augment(int(q), s.slotOf(int(q), x)) {
				// x has left q; it takes the slot here instead.
				if s.prim[q] == x {
					s.prim[q] = -1
					s.pcount[x]--
				}
				s.fills[x][k] = int32(p)
				s.put(p, j, x)
				return true
			}
		}
	}
	return false
}

// swapInto fills p when no node below its target fits: an owner a of some
// partition q moves to p, and a node y below its target takes a's slot in
// q. Such a pair exists whenever zoning is feasible: y's group is missing
// from some partition q, and q, being full, has an owner whose group is
// missing from p.
func (s *state) swapInto(p int) bool {
	n := len(s.ids)
	off := int(pairHash(uint64(p), 1) % uint64(s.parts))
	jp := int(s.size[p])
	for y := range int32(n) {
		if s.deficit(y) <= 0 {
			continue
		}
		bestQ, bestJ := -1, -1
		for i := range s.parts {
			q := (off + i) % s.parts
			if q == p {
				continue
			}
			for j, a := range s.owners(q) {
				if !s.canPlace(q, j, y) || !s.canPlace(p, jp, a) {
					continue
				}
				if s.prim[q] != a {
					bestQ, bestJ = q, j
					break
				}
				if bestQ < 0 {
					bestQ, bestJ = q, j
				}
			}
			if bestQ >= 0 && s.prim[bestQ] != s.own[bestQ*s.r+bestJ] {
				break
			}
		}
		if bestQ < 0 {
			continue
		}
		a := s.own[bestQ*s.r+bestJ]
		s.add(p, a)
		s.replace(bestQ, bestJ, y)
		if s.prim[bestQ] == a {
			s.prim[bestQ] = -1
			s.pcount[a]--
		}
		s.moveFill(a, int32(bestQ), int32(p))
		s.fills[y] = append(s.fills[y], int32(bestQ))
		return true
	}
	return false
}

// moveFill records that x, if the fill placed it in from, is now in to;
// otherwise it records to as a new fill of x.
func (s *state) moveFill(x, from, to int32) {
	for k, q := range s.fills[x] {
		if q == from {
			s.fills[x][k] = to
			return
		}
	}
	s.fills[x] = append(s.fills[x], to)
}

// overfill fills p with the fitting node least above its target. Only
// reached when zoning leaves no other choice; rebalance then evens out.
func (s *state) overfill(p int) {
	j := int(s.size[p])
	best := int32(-1)
	for x := range int32(len(s.ids)) {
		if !s.canPlace(p, j, x) {
			continue
		}
		if best < 0 || s.deficit(x) > s.deficit(best) ||
			s.deficit(x) == s.deficit(best) && s.hash[x] < s.hash[best] {
			best = x
		}
	}
	s.add(p, best)
	s.fills[best] = append(s.fills[best], int32(p))
}
