package clusterkit

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"clusterkit.dev/clusterkit/internal/state"
	"clusterkit.dev/clusterkit/placement"
)

// ruleWhy says in words what each placement rule did for an owner.
var ruleWhy = map[placement.Rule]string{
	placement.RuleKept:      "kept from the previous table: placement moves as little as balance allows (minimal movement)",
	placement.RuleFill:      "filled an empty slot: its zone and node were furthest below their weighted share (balance, zone spread)",
	placement.RuleZoneSwap:  "zone spread: swapped in so that no two owners share a zone",
	placement.RuleOverfill:  "zone spread left no node below its share; it was the least loaded node that fits",
	placement.RuleRebalance: "balance: the slot moved here from a node above its weighted share",
}

// primaryWhy says in words what each placement rule did for a primary.
var primaryWhy = map[placement.Rule]string{
	placement.RuleKept:            "primary kept from the previous table (minimal movement)",
	placement.RuleFill:            "primary: took over a partition that had lost its primary, as the owner lacking primaries most",
	placement.RuleRebalance:       "primary: handed over with the move, from a node with primaries to spare",
	placement.RuleFewestPrimaries: "primary: the owner furthest below its weighted primary share",
	placement.RulePrimaryBalance:  "primary: handed over so that every node's primary count is within its weighted bounds",
}

// handleExplain serves GET /partitions/explain?partition=N on the leader.
func (ck *ClusterKit) handleExplain(c echo.Context) error {
	var st *state.State
	ck.fsm.read(func(s *state.State) { st = s.Clone() })
	if !st.Initialized() || first(st) {
		return ErrNoPartitionMap
	}
	if c.QueryParam("partition") == "" {
		return badRequest("partition", "required")
	}
	i, err := intParam(c, "partition", 0, 0, st.PartitionCount-1)
	if err != nil {
		return err
	}
	info, err := ck.explain(st, i, time.Now())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, info)
}

// explain says why partition i's owners in st are where they are: the
// placement rule that puts each in the target the controller computes now,
// its share, its zone, and the recorded change that made it an owner.
func (ck *ClusterKit) explain(st *state.State, i int, now time.Time) (ExplainInfo, error) {
	target, trace, err := placement.ComputeTrace(settledTable(st), eligibleNodes(st, now, &ck.opts.cfg),
		placement.Config{Partitions: st.PartitionCount, ReplicationFactor: st.ReplicationFactor})
	if err != nil {
		return ExplainInfo{}, err
	}
	p := st.Partitions[i]
	tp := target[i]
	info := ExplainInfo{Partition: i, Version: st.Version, Epoch: p.Epoch, ReplicationFactor: st.ReplicationFactor,
		Zoning: trace.Zoning(), Target: nonNil(tp.Owners),
		Settled: slices.Equal(p.Owners, tp.Owners) && len(p.Joining) == 0}
	var ids []string
	ids = append(ids, p.Owners...)
	for _, j := range p.Joining {
		ids = append(ids, j.Node)
	}
	for _, id := range tp.Owners {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	for _, id := range ids {
		info.Owners = append(info.Owners, explainOwner(st, i, id, tp, trace))
	}
	return info, nil
}

func explainOwner(st *state.State, i int, id string, tp placement.Partition, trace *placement.Trace) OwnerExplain {
	p := st.Partitions[i]
	n := st.Nodes[id]
	o := OwnerExplain{Node: id, Role: RoleNone, InTarget: slices.Contains(tp.Owners, id), Why: []string{}}
	if n != nil {
		o.Zone, o.Weight = n.Zone, n.Weight
	}
	switch {
	case p.Primary() == id:
		o.Role = RolePrimary
	case p.IsOwner(id):
		o.Role = RoleReplica
	case p.JoiningIndex(id) >= 0:
		o.Role = RoleJoining
	}
	why := func(format string, args ...any) { o.Why = append(o.Why, fmt.Sprintf(format, args...)) }
	for k := len(p.History) - 1; k >= 0 && o.Role != RoleJoining && o.Role != RoleNone; k-- {
		if c := p.History[k]; slices.Contains(c.Added, id) {
			since := changeFromState(i, c)
			o.Since = &since
			ruleNote := ""
			if c.Rule != "" {
				ruleNote = ", placement rule " + c.Rule
			}
			why("owner since map version %d (%s%s)", c.Version, c.Reason, ruleNote)
			break
		}
	}
	if k := p.JoiningIndex(id); k >= 0 {
		j := p.Joining[k]
		msg := fmt.Sprintf("joining (%s): copying from %s", j.Reason, orNone(j.From))
		if j.Replaces != "" {
			msg += ", to replace " + j.Replaces
		}
		why("%s", msg)
	}
	if o.InTarget {
		r := trace.OwnerRule(i, id)
		o.Rule = r.String()
		why("%s", ruleWhy[r])
		if tp.Primary() == id {
			pr := trace.PrimaryRule(i)
			o.PrimaryRule = pr.String()
			why("%s", primaryWhy[pr])
		}
		if o.Role == RoleNone {
			why("will be added: its handoff has not started yet (MaxConcurrentMoves bounds the handoffs in flight)")
		}
	} else {
		switch {
		case n == nil:
			why("leaving: no longer a member")
		case n.Draining:
			why("leaving: the node is draining")
		case n.Status == state.StatusDead:
			why("leaving: the node is dead")
		default:
			why("leaving: placement gives the slot to another node (balance or zone spread)")
		}
	}
	if s, ok := trace.Share(id); ok {
		o.Share = &s
		why("weight %d: owns %d slots against a weighted share of %d, primary of %d (bounds %d..%d)",
			o.Weight, s.Slots, s.TargetSlots, s.Primaries, s.MinPrimaries, s.MaxPrimaries)
	}
	if o.Zone != "" {
		switch trace.Zoning() {
		case placement.ZoningStrict:
			why("zone %s: no other owner may share it (zone spread)", o.Zone)
		case placement.ZoningPreferred:
			why("zone %s: too few zones for strict spreading; zones are a preference", o.Zone)
		}
	}
	return o
}

func orNone(s string) string {
	if s == "" {
		return "no live owner"
	}
	return s
}
