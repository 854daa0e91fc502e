package placement

import (
	"cmp"
	"slices"
)

// state is the working form of a table: nodes are numbered by their rank in
// ID order, and every partition has r owner slots in one flat array.
type state struct {
	parts int // number of partitions
	r     int // owners per partition: min(RF, nodes)

	ids    []string // node IDs in ascending order; a node is its index
	hash   []uint64 // hash of each node's ID, for tie-breaking
	weight []uint64 // weight of each node, zero replaced by one

	// A partition holds at most one node of each group. Under strict
	// zoning a group is a zone (a node without a zone is a group of its
	// own); otherwise every node is its own group, and zones are only a
	// preference of the fill (softZones).
	group     []int32   // group of each node
	members   [][]int32 // nodes of each group
	zone      []int32   // zone number of each node, -1 for none
	softZones bool

	own  []int32   // own[p*r+j] is the j-th owner of p, for j < size[p]
	at   []int32   // at[p*r+j] is the index of p in list[own[p*r+j]]
	size []int32   // number of owners of each partition
	list [][]int32 // partitions owned by each node, in no particular order

	target  []int // slots each node should own
	blocked []int // see blockedCounts; live only while setting targets

	prim     []int32 // primary of each partition, -1 while undecided
	prevPrim []int32 // primary of each partition in prev, -1 if it left
	pcount   []int   // partitions whose primary each node is
	plo, phi []int   // bounds on each node's primary count

	// tr records which step placed each owner and primary; nil unless
	// the caller asked for a trace (ComputeTrace).
	tr *tracer

	undecided int     // partitions without a primary, kept during rebalance
	relay     []int32 // see relayDistances; nil when not in use

	// Scratch space for searches.
	seen  []uint32
	epoch uint32
	from  []int32
	via   []int32

	// Fill bookkeeping, live only during fill.
	queue  *bucketQueue // groups keyed by their members' total deficit
	fills  [][]int32    // partitions each node was placed in by the fill
	budget int          // augmenting-path steps left
	onPath []bool       // partitions waiting on the current augment
}

func newState(nodes []Node, cfg Config) *state {
	sorted := slices.Clone(nodes)
	slices.SortFunc(sorted, func(a, b Node) int { return cmp.Compare(a.ID, b.ID) })
	n := len(sorted)
	s := &state{
		parts:  cfg.Partitions,
		r:      min(cfg.ReplicationFactor, n),
		ids:    make([]string, n),
		hash:   make([]uint64, n),
		weight: make([]uint64, n),
		group:  make([]int32, n),
		zone:   make([]int32, n),
		list:   make([][]int32, n),
		pcount: make([]int, n),
		seen:   make([]uint32, n),
		from:   make([]int32, n),
		via:    make([]int32, n),
	}
	zones := make(map[string]int32)
	groups := 0
	for x, nd := range sorted {
		s.ids[x] = nd.ID
		s.hash[x] = hashString(nd.ID)
		s.weight[x] = uint64(max(nd.Weight, 1))
		s.zone[x] = -1
		if nd.Zone == "" {
			groups++
			continue
		}
		z, ok := zones[nd.Zone]
		if !ok {
			z = int32(len(zones))
			zones[nd.Zone] = z
			groups++
		}
		s.zone[x] = z
	}
	strict := groups >= s.r
	s.softZones = !strict && len(zones) > 0
	if strict && len(zones) > 0 {
		// Number groups in node order: zones first seen, then loners.
		byZone := make(map[int32]int32, len(zones))
		for x := range sorted {
			z := s.zone[x]
			if z < 0 {
				s.group[x] = int32(len(s.members))
				s.members = append(s.members, []int32{int32(x)})
				continue
			}
			g, ok := byZone[z]
			if !ok {
				g = int32(len(s.members))
				byZone[z] = g
				s.members = append(s.members, nil)
			}
			s.group[x] = g
			s.members[g] = append(s.members[g], int32(x))
		}
	} else {
		s.members = make([][]int32, n)
		for x := range sorted {
			s.group[x] = int32(x)
			s.members[x] = []int32{int32(x)}
		}
	}

	slots := s.parts * s.r
	s.own = make([]int32, slots)
	s.at = make([]int32, slots)
	s.size = make([]int32, s.parts)
	s.prim = make([]int32, s.parts)
	s.prevPrim = make([]int32, s.parts)
	for p := range s.prim {
		s.prim[p] = -1
		s.prevPrim[p] = -1
	}
	// Pre-size ownership lists for the expected share to avoid regrowth.
	per := slots/n + 1
	backing := make([]int32, 0, per*n)
	for x := range s.list {
		s.list[x] = backing[x*per : x*per : (x+1)*per]
	}
	return s
}

// owners returns the owners of partition p. The slice aliases s.
func (s *state) owners(p int) []int32 {
	base := p * s.r
	return s.own[base : base+int(s.size[p])]
}

// slotOf returns the slot index of x in partition p, or -1.
func (s *state) slotOf(p int, x int32) int {
	for j, o := range s.owners(p) {
		if o == x {
			return j
		}
	}
	return -1
}

// canPlace reports whether x may occupy slot j of partition p: no other
// owner of p may be in x's group (and so be x). The current occupant of
// slot j, if any, is ignored because it is the one leaving.
func (s *state) canPlace(p, j int, x int32) bool {
	g := s.group[x]
	for k, o := range s.owners(p) {
		if k != j && s.group[o] == g {
			return false
		}
	}
	return true
}

// zoneFree reports whether no owner of p shares x's zone.
func (s *state) zoneFree(p int, x int32) bool {
	z := s.zone[x]
	if z < 0 {
		return true
	}
	for _, o := range s.owners(p) {
		if s.zone[o] == z {
			return false
		}
	}
	return true
}

// deficit returns how many slots x lacks to reach its target (negative
// when it has too many).
func (s *state) deficit(x int32) int {
	return s.target[x] - len(s.list[x])
}

// add appends x as a new owner of p.
func (s *state) add(p int, x int32) {
	slot := p*s.r + int(s.size[p])
	s.own[slot] = x
	s.at[slot] = int32(len(s.list[x]))
	s.list[x] = append(s.list[x], int32(p))
	s.size[p]++
	s.counted(x, 1)
	s.tr.placed(slot)
}

// replace makes y the owner in slot j of p instead of its current occupant.
// The primary of p is the caller's concern.
func (s *state) replace(p, j int, y int32) {
	slot := p*s.r + j
	x := s.own[slot]
	s.unlist(x, p, s.at[slot])
	s.counted(x, -1)
	s.own[slot] = y
	s.at[slot] = int32(len(s.list[y]))
	s.list[y] = append(s.list[y], int32(p))
	s.counted(y, 1)
	s.tr.placed(slot)
}

// put places x in slot j of p: a new slot when j == size[p], otherwise
// replacing the occupant.
func (s *state) put(p, j int, x int32) {
	if j == int(s.size[p]) {
		s.add(p, x)
	} else {
		s.replace(p, j, x)
	}
}

// unlist removes p, found at index i, from x's ownership list.
func (s *state) unlist(x int32, p int, i int32) {
	l := s.list[x]
	last := l[len(l)-1]
	l[i] = last
	s.list[x] = l[:len(l)-1]
	if int(last) != p {
		s.at[int(last)*s.r+s.slotOf(int(last), x)] = i
	}
}

// counted keeps the fill's queue in step after x's slot count changed by
// delta.
func (s *state) counted(x int32, delta int) {
	if s.queue == nil {
		return
	}
	after := s.deficit(x)
	before := after + delta
	g := int(s.group[x])
	switch {
	case before > 0 && after < before:
		s.queue.dec(g)
	case after > 0 && after > before:
		s.queue.inc(g)
	}
}

// nextEpoch starts a search: nodes marked in seen before are unmarked.
func (s *state) nextEpoch() uint32 {
	s.epoch++
	if s.epoch == 0 {
		clear(s.seen)
		s.epoch = 1
	}
	return s.epoch
}
