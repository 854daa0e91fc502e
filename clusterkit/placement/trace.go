package placement

import (
	"fmt"
	"slices"
)

// Rule names the step of Compute that placed an owner or chose a primary.
type Rule uint8

// Rules, in the order Compute applies them (DESIGN.md, "Algorithm").
const (
	// RuleNone: not placed by this Compute (the node does not own the
	// partition in the result).
	RuleNone Rule = iota
	// RuleKept: the owner (or primary) was kept from prev: minimal
	// movement.
	RuleKept
	// RuleFill: an empty slot went to the zone and node furthest below
	// their weighted share, in a zone the partition lacked (balance, zone
	// spread, weights); for a primary, the filled node or the owner that
	// most lacked primaries took over a partition that had lost its own.
	RuleFill
	// RuleZoneSwap: no node below its share fitted the slot without
	// breaking zone spread, so an owner of another partition moved in and
	// a node below its share took its place there.
	RuleZoneSwap
	// RuleOverfill: zone spread left no node below its share; the node
	// least above its share that fits took the slot.
	RuleOverfill
	// RuleRebalance: the slot moved from a node above its weighted share
	// to this node, below it (balance, weights); for a primary, it was
	// handed over in the same move because the old primary's node had
	// primaries to spare.
	RuleRebalance
	// RuleFewestPrimaries: the partition had no primary after the moves;
	// the owner furthest below its primary share took it.
	RuleFewestPrimaries
	// RulePrimaryBalance: the primary was handed between owners so that
	// every node's primary count is within its weighted bounds.
	RulePrimaryBalance
)

var ruleNames = [...]string{"", "kept", "fill", "zone-swap", "overfill", "rebalance", "fewest-primaries", "primary-balance"}

// String returns the rule's name as used in JSON: "kept", "fill",
// "zone-swap", "overfill", "rebalance", "fewest-primaries",
// "primary-balance" ("" for RuleNone).
func (r Rule) String() string {
	if int(r) < len(ruleNames) {
		return ruleNames[r]
	}
	return fmt.Sprintf("rule(%d)", uint8(r))
}

// MarshalText encodes the rule as its name.
func (r Rule) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText decodes a rule name written by MarshalText.
func (r *Rule) UnmarshalText(b []byte) error {
	i := slices.Index(ruleNames[:], string(b))
	if i < 0 {
		return fmt.Errorf("placement: unknown rule %q", b)
	}
	*r = Rule(i)
	return nil
}

// tracer records, while Compute runs, the rule of the step that put each
// slot's current owner there and chose each primary. Its methods are no-ops
// on a nil tracer, so that Compute without a trace pays one branch.
type tracer struct {
	cur   Rule
	slots []Rule // per slot of state.own
	prims []Rule // per partition
}

func (t *tracer) start(s *state) {
	t.slots = make([]Rule, len(s.own))
	t.prims = make([]Rule, s.parts)
}

func (t *tracer) phase(r Rule) {
	if t != nil {
		t.cur = r
	}
}

func (t *tracer) placed(slot int) {
	if t != nil {
		t.slots[slot] = t.cur
	}
}

func (t *tracer) primary(p int, r Rule) {
	if t != nil {
		t.prims[p] = r
	}
}

// Trace says why a table computed by ComputeTrace is what it is: the rule
// that placed each owner and chose each primary, and every node's share.
type Trace struct {
	table  Table
	owners []Rule // aligned with the owners of table, partition by partition
	offset []int  // offset[p] is the index in owners of table[p].Owners[0]
	prims  []Rule
	shares map[string]Share
	zoning Zoning
}

// Share is one node's share of a table: the slots and primaries it holds
// and the targets that weights, zones and the partition count set for it.
type Share struct {
	Slots int `json:"slots"`
	// TargetSlots is the slot count balance gives the node: the floor or
	// ceiling of its weighted fair share (DESIGN.md, guarantee 5).
	TargetSlots int `json:"target_slots"`
	Primaries   int `json:"primaries"`
	// MinPrimaries and MaxPrimaries bound the node's primary count.
	MinPrimaries int `json:"min_primaries"`
	MaxPrimaries int `json:"max_primaries"`
}

// Zoning says how zones constrained a table.
type Zoning string

// Zoning modes.
const (
	// ZoningStrict: there are at least as many groups (zones, plus nodes
	// without a zone) as owners per partition, so no two owners of a
	// partition share a zone.
	ZoningStrict Zoning = "strict"
	// ZoningPreferred: too few zones for strict spreading; the fill prefers
	// a zone the partition lacks.
	ZoningPreferred Zoning = "preferred"
	// ZoningNone: no node has a zone.
	ZoningNone Zoning = "none"
)

// ComputeTrace is Compute that also returns a Trace of its decisions. It
// returns the same table as Compute for the same input.
func ComputeTrace(prev Table, nodes []Node, cfg Config) (Table, *Trace, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	if err := validatePrev(prev, cfg); err != nil {
		return nil, nil, err
	}
	if err := validateNodes(nodes); err != nil {
		return nil, nil, err
	}
	if len(nodes) == 0 {
		t := make(Table, cfg.Partitions)
		return t, &Trace{table: t, offset: make([]int, len(t)), prims: make([]Rule, len(t)), shares: map[string]Share{}, zoning: ZoningNone}, nil
	}
	tr := &tracer{}
	s := compute(prev, nodes, cfg, tr)
	t := s.table()
	out := &Trace{table: t, owners: make([]Rule, 0, s.parts*s.r), offset: make([]int, s.parts),
		prims: tr.prims, shares: make(map[string]Share, len(s.ids))}
	for p := range t {
		// The order of table: the primary, then the others in slot order.
		out.offset[p] = len(out.owners)
		base, pr := p*s.r, s.prim[p]
		out.owners = append(out.owners, tr.slots[base+s.slotOf(p, pr)])
		for j, x := range s.owners(p) {
			if x != pr {
				out.owners = append(out.owners, tr.slots[base+j])
			}
		}
	}
	for x, id := range s.ids {
		out.shares[id] = Share{Slots: len(s.list[x]), TargetSlots: s.target[x], Primaries: s.pcount[x],
			MinPrimaries: s.plo[x], MaxPrimaries: s.phi[x]}
	}
	out.zoning = ZoningNone
	switch {
	case s.softZones:
		out.zoning = ZoningPreferred
	case slices.ContainsFunc(s.zone, func(z int32) bool { return z >= 0 }):
		out.zoning = ZoningStrict
	}
	return t, out, nil
}

// OwnerRule returns the rule that placed node id as an owner of partition
// p, or RuleNone when id does not own p in the table. A nil Trace knows
// no rule.
func (t *Trace) OwnerRule(p int, id string) Rule {
	if t == nil || p < 0 || p >= len(t.table) {
		return RuleNone
	}
	k := slices.Index(t.table[p].Owners, id)
	if k < 0 {
		return RuleNone
	}
	return t.owners[t.offset[p]+k]
}

// PrimaryRule returns the rule that chose partition p's primary.
func (t *Trace) PrimaryRule(p int) Rule {
	if t == nil || p < 0 || p >= len(t.prims) {
		return RuleNone
	}
	return t.prims[p]
}

// Share returns node id's share of the table; ok is false for a node that
// was not eligible.
func (t *Trace) Share(id string) (s Share, ok bool) {
	if t == nil {
		return s, false
	}
	s, ok = t.shares[id]
	return s, ok
}

// Zoning says how zones constrained the table.
func (t *Trace) Zoning() Zoning { return t.zoning }
