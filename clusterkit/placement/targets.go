package placement

import (
	"cmp"
	"math/bits"
	"slices"
)

// setTargets sets each node's slot target and primary bounds.
//
// Slots: the P·r slots are shared in proportion to weight, except that a
// group (and so a node) can own at most one slot per partition, so no
// group's share may exceed P. Groups whose share would exceed P get exactly
// P and the rest is shared among the others, repeatedly (water-filling).
// Each node's target is then the floor or the ceiling of its exact share.
// Which nodes get the ceiling is chosen to keep prev: first nodes that
// already own more than the floor, then the largest fractional part, then
// by hash of ID. All arithmetic is exact integer arithmetic.
//
// Primaries: the P primaries are shared in proportion to weight, capped at
// each node's slot target (water-filling again); a node's primary count
// must lie between the floor and the ceiling of its exact share. Bounds
// rather than fixed targets let the primary phase keep more primaries.
func (s *state) setTargets() {
	n := len(s.ids)
	groupWeight := make([]uint64, len(s.members))
	for x := range n {
		groupWeight[s.group[x]] += s.weight[x]
	}
	p := uint64(s.parts)
	caps := make([]uint64, len(s.members))
	for g := range caps {
		caps[g] = p
	}
	capped, rest, restWeight := waterfill(groupWeight, caps, p*uint64(s.r))

	s.target = make([]int, n)
	s.blocked = s.blockedCounts()
	rem := make([]uint64, n)
	var free []int32 // uncapped nodes with a fractional share
	for g, members := range s.members {
		if !capped[g] {
			for _, x := range members {
				q, r := divmod(rest, s.weight[x], restWeight)
				s.target[x], rem[x] = int(q), r
				if r > 0 {
					free = append(free, x)
				}
			}
			continue
		}
		// A capped group owns exactly P slots, shared by its members.
		var frac []int32
		units := s.parts
		for _, x := range members {
			q, r := divmod(p, s.weight[x], groupWeight[g])
			s.target[x], rem[x] = int(q), r
			units -= int(q)
			if r > 0 {
				frac = append(frac, x)
			}
		}
		s.sortForCeiling(frac, rem)
		for _, x := range frac[:units] {
			s.target[x]++
		}
	}

	// Uncapped nodes share what is left. A group may still not exceed P.
	units := int(rest)
	groupSlots := make([]int, len(s.members))
	for x := range n {
		if !capped[s.group[x]] {
			units -= s.target[x]
			groupSlots[s.group[x]] += s.target[x]
		}
	}
	s.sortForCeiling(free, rem)
	for _, x := range free {
		if units == 0 {
			break
		}
		if g := s.group[x]; groupSlots[g] < s.parts {
			s.target[x]++
			groupSlots[g]++
			units--
		}
	}

	s.blocked = nil
	s.setPrimaryBounds()
}

// blockedCounts returns, for each node, the number of partitions with an
// empty slot that the node cannot fill because its group is already there.
func (s *state) blockedCounts() []int {
	byGroup := make([]int, len(s.members))
	for p := range s.parts {
		if int(s.size[p]) < s.r {
			for _, o := range s.owners(p) {
				byGroup[s.group[o]]++
			}
		}
	}
	blocked := make([]int, len(s.ids))
	for x, g := range s.group {
		blocked[x] = byGroup[g]
	}
	return blocked
}

// sortForCeiling orders candidates for the ceiling of their share: nodes
// that already own more than the floor first (giving them the ceiling
// moves nothing), then larger fractional parts, then nodes that can fill
// more of the empty slots (so the empty slots can go to nodes whose target
// rose, without displacing anyone), then hash and ID.
func (s *state) sortForCeiling(xs []int32, rem []uint64) {
	slices.SortFunc(xs, func(a, b int32) int {
		ka := len(s.list[a]) > s.target[a]
		kb := len(s.list[b]) > s.target[b]
		if ka != kb {
			if ka {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(rem[b], rem[a]); c != 0 {
			return c
		}
		if c := cmp.Compare(s.blocked[a], s.blocked[b]); c != 0 {
			return c
		}
		if c := cmp.Compare(s.hash[a], s.hash[b]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
}

// setPrimaryBounds sets plo and phi from weights and slot targets.
func (s *state) setPrimaryBounds() {
	n := len(s.ids)
	caps := make([]uint64, n)
	for x := range n {
		caps[x] = uint64(s.target[x])
	}
	capped, rest, restWeight := waterfill(s.weight, caps, uint64(s.parts))
	s.plo = make([]int, n)
	s.phi = make([]int, n)
	for x := range n {
		if capped[x] {
			s.plo[x], s.phi[x] = s.target[x], s.target[x]
			continue
		}
		q, r := divmod(rest, s.weight[x], restWeight)
		s.plo[x], s.phi[x] = int(q), int(q)
		if r > 0 {
			s.phi[x]++
		}
	}
}

// waterfill shares total among items in proportion to weights, except that
// no item gets more than its cap. It returns which items are capped (they
// get exactly their cap) and the amount and weight left for the others,
// each of which gets rest·weight/restWeight, below its cap.
func waterfill(weights, caps []uint64, total uint64) (capped []bool, rest, restWeight uint64) {
	capped = make([]bool, len(weights))
	rest = total
	for _, w := range weights {
		restWeight += w
	}
	for changed := true; changed; {
		changed = false
		for i, w := range weights {
			// Capped when rest·w/restWeight >= cap. Raising others'
			// shares only ever caps more items, so order does not matter.
			if !capped[i] && !less128(rest, w, caps[i], restWeight) {
				capped[i] = true
				rest -= caps[i]
				restWeight -= w
				changed = true
			}
		}
	}
	return capped, rest, restWeight
}

// less128 reports whether a·b < c·d, computed without overflow.
func less128(a, b, c, d uint64) bool {
	h1, l1 := bits.Mul64(a, b)
	h2, l2 := bits.Mul64(c, d)
	return h1 < h2 || h1 == h2 && l1 < l2
}

// divmod returns the quotient and remainder of a·b/d. The quotient must
// fit in 64 bits, which holds whenever b <= d.
func divmod(a, b, d uint64) (q, r uint64) {
	hi, lo := bits.Mul64(a, b)
	return bits.Div64(hi, lo, d)
}
