package placement

// Compute returns the placement table for nodes, starting from prev.
//
// prev is the current table: empty for the first table, otherwise it must
// have exactly cfg.Partitions entries. nodes are the eligible nodes; the
// caller has already removed dead and draining ones. Owners in prev that are
// not in nodes are dropped, as are repeated owners and owners beyond the
// replication factor.
//
// The result has cfg.Partitions partitions, each with min(RF, len(nodes))
// distinct owners, Owners[0] being the primary. With no nodes every
// partition has no owners. Slots and primaries are shared in proportion to
// weight, owners of a partition are in distinct zones whenever there are
// enough zones, and the result keeps as much of prev as that balance
// allows; DESIGN.md states the exact bounds.
//
// Compute is deterministic: it depends on the set of nodes, not their
// order, and uses no randomness, clock or global state. It does not modify
// prev or nodes, and the result shares no memory with them.
func Compute(prev Table, nodes []Node, cfg Config) (Table, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := validatePrev(prev, cfg); err != nil {
		return nil, err
	}
	if err := validateNodes(nodes); err != nil {
		return nil, err
	}
	if len(nodes) == 0 {
		return make(Table, cfg.Partitions), nil
	}
	return compute(prev, nodes, cfg, nil).table(), nil
}

// compute runs the steps of Compute on validated input, recording them in
// tr when it is not nil.
func compute(prev Table, nodes []Node, cfg Config, tr *tracer) *state {
	s := newState(nodes, cfg)
	if tr != nil {
		tr.start(s)
	}
	s.tr = tr
	s.tr.phase(RuleKept)
	s.keep(prev)
	s.setTargets()
	s.tr.phase(RuleFill)
	s.fill()
	s.tr.phase(RuleRebalance)
	s.rebalance()
	s.choosePrimaries()
	return s
}

// keep copies prev's owners into s, dropping owners that are not eligible,
// repeated, in a group already present (under strict zoning), or beyond the
// replication factor. A partition keeps its primary if prev's primary
// survives.
func (s *state) keep(prev Table) {
	if len(prev) == 0 {
		return
	}
	index := make(map[string]int32, len(s.ids))
	for x, id := range s.ids {
		index[id] = int32(x)
	}
	for p, part := range prev {
		for _, id := range part.Owners {
			j := int(s.size[p])
			if j == s.r {
				break
			}
			x, ok := index[id]
			if ok && s.canPlace(p, j, x) {
				s.add(p, x)
			}
		}
		if s.size[p] > 0 && s.ids[s.own[p*s.r]] == part.Owners[0] {
			x := s.own[p*s.r]
			s.prim[p] = x
			s.prevPrim[p] = x
			s.pcount[x]++
			s.tr.primary(p, RuleKept)
		}
	}
}

// table converts s to a Table whose Owners[0] is each partition's primary,
// followed by the other owners in their slot order.
func (s *state) table() Table {
	t := make(Table, s.parts)
	names := make([]string, s.parts*s.r)
	for p := range t {
		base, n := p*s.r, int(s.size[p])
		out := names[base : base+n : base+n]
		pr := s.prim[p]
		out[0] = s.ids[pr]
		k := 1
		for _, x := range s.own[base : base+n] {
			if x != pr {
				out[k] = s.ids[x]
				k++
			}
		}
		t[p].Owners = out
	}
	return t
}
