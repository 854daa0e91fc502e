package clusterkit

import (
	stdcmp "cmp"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"clusterkit.dev/clusterkit/internal/state"
	"clusterkit.dev/clusterkit/placement"
)

// handlePlan serves GET /cluster/plan on the leader: a dry run of a
// membership change. See PlanInfo.
func (ck *ClusterKit) handlePlan(c echo.Context) error {
	change, err := planChange(c)
	if err != nil {
		return err
	}
	var st *state.State
	ck.fsm.read(func(s *state.State) { st = s.Clone() })
	info, sources, err := ck.dryRun(st, change, time.Now())
	if err != nil {
		return err
	}
	// Every node runs the same application: a leader that reports no
	// sizes asks no one.
	if len(sources) > 0 && ck.sizes.Load() != nil {
		ck.addSizes(c, &info, sources)
	}
	return c.JSON(http.StatusOK, info)
}

// planChange parses the query of GET /cluster/plan.
func planChange(c echo.Context) (PlanChange, error) {
	var ch PlanChange
	var err error
	if ch.Join, err = idList(c, "join"); err != nil {
		return ch, err
	}
	if ch.Leave, err = idList(c, "leave"); err != nil {
		return ch, err
	}
	if ch.Drain, err = idList(c, "drain"); err != nil {
		return ch, err
	}
	ch.Zone = c.QueryParam("zone")
	if ch.Zone != "" && len(ch.Join) == 0 {
		return ch, badRequest("zone", "only with join")
	}
	if c.QueryParam("weight") != "" && len(ch.Join) == 0 {
		return ch, badRequest("weight", "only with join")
	}
	if ch.Weight, err = intParam(c, "weight", 1, 1, placement.MaxWeight); err != nil {
		return ch, err
	}
	if len(ch.Join) == 0 {
		ch.Weight = 0
	}
	return ch, nil
}

// idList parses a comma-separated list of node IDs.
func idList(c echo.Context, name string) ([]string, error) {
	s := c.QueryParam(name)
	if s == "" {
		return nil, nil
	}
	var ids []string
	for _, id := range strings.Split(s, ",") {
		id = strings.TrimSpace(id)
		if id == "" || !validID(id) {
			return nil, badRequest(name, fmt.Sprintf("%q is not a node ID", id))
		}
		if slices.Contains(ids, id) {
			return nil, badRequest(name, fmt.Sprintf("%q is listed twice", id))
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// maxPlanSteps bounds the controller steps a dry run simulates.
const maxPlanSteps = 10000

// dryRun computes what the leader would do for change from st at now. It
// runs the controller's own planner on a copy of st with the change
// applied (joiners added, leavers and drained nodes draining), step after
// step, completing every handoff it begins as if each copy finished at
// once, until the planner has nothing left to do. The moves are the owner
// changes of those steps. sources maps the copy sources of the moves to
// their HTTP addresses.
func (ck *ClusterKit) dryRun(st *state.State, ch PlanChange, now time.Time) (PlanInfo, map[string]string, error) {
	info := PlanInfo{Version: st.Version, LeaderID: ck.opts.NodeID, Change: ch, Moves: []PlanMove{}}
	if !st.Initialized() || first(st) {
		return info, nil, ErrNoPartitionMap
	}
	sim := st.Clone()
	at := now.UnixMilli()
	gone := map[string]bool{}
	for _, f := range []struct {
		name string
		ids  []string
	}{{"leave", ch.Leave}, {"drain", ch.Drain}} {
		for _, id := range f.ids {
			if st.Nodes[id] == nil {
				return info, nil, badRequest(f.name, fmt.Sprintf("%q is not a member", id))
			}
			if gone[id] {
				return info, nil, badRequest(f.name, fmt.Sprintf("%q is also in leave", id))
			}
			gone[id] = true
			if _, err := sim.Apply(state.Command{Op: state.OpSetDraining, NodeID: id, Draining: true}); err != nil {
				return info, nil, err
			}
		}
	}
	for k, id := range ch.Join {
		if st.Nodes[id] != nil {
			return info, nil, badRequest("join", fmt.Sprintf("%q is already a member", id))
		}
		// Addresses no member can have: the joiner exists only here.
		n := &state.Node{ID: id, Name: id, HTTPAddr: fmt.Sprintf("plan.invalid:%d", 2*k+1),
			RaftAddr: fmt.Sprintf("plan.invalid:%d", 2*k+2), Zone: ch.Zone, Weight: ch.Weight}
		if _, err := sim.Apply(state.Command{Op: state.OpJoin, Node: n, At: at}); err != nil {
			return info, nil, err
		}
	}
	for _, p := range st.Partitions {
		info.MovesInFlight += len(p.Joining)
	}
	var moves []PlanMove
	var last simTarget
	for step := 0; ; step++ {
		if step == maxPlanSteps {
			return info, nil, fmt.Errorf("plan: no fixed point after %d controller steps", maxPlanSteps)
		}
		cmds, err := ck.planStep(sim, now, &last)
		if err != nil {
			return info, nil, err
		}
		for _, cmd := range cmds {
			moves = append(moves, commandMoves(sim, cmd)...)
			if _, err := sim.Apply(cmd); err != nil {
				return info, nil, fmt.Errorf("plan step %d: %w", step, err)
			}
		}
		if len(cmds) > 0 {
			// The leader plans again after each commit, before any copy
			// can have finished.
			continue
		}
		// Every handoff in flight completes, as the application's ready
		// reports would make it.
		var done []state.Move
		for i, p := range sim.Partitions {
			for _, j := range p.Joining {
				done = append(done, state.Move{Partition: i, Node: j.Node, Replaces: release(p, j)})
			}
		}
		if len(done) == 0 {
			break
		}
		cmd := state.Command{Op: state.OpCompleteMoves, Moves: done, At: at}
		moves = append(moves, commandMoves(sim, cmd)...)
		if _, err := sim.Apply(cmd); err != nil {
			return info, nil, fmt.Errorf("plan step %d: %w", step, err)
		}
		info.Steps++
	}
	sources := map[string]string{}
	for _, m := range moves {
		if m.Kind == MoveCopy {
			info.Copies++
			if n := st.Nodes[m.CopySource]; n != nil {
				sources[m.CopySource] = n.HTTPAddr
			}
		}
	}
	slices.SortStableFunc(moves, func(a, b PlanMove) int { return a.Partition - b.Partition })
	info.Moves = append(info.Moves, moves...)
	before, after := tableOf(st), tableOf(sim)
	for i := range before {
		if before[i].Primary() != after[i].Primary() {
			info.PrimaryChanges++
		}
	}
	info.Before, info.After = balanceOf(before), balanceOf(after)
	return info, sources, nil
}

// simTarget remembers a dry run's last placement: a step whose settled
// table and nodes are unchanged gets the same answer (Compute is
// deterministic), without computing it again.
type simTarget struct {
	prev   placement.Table
	nodes  []placement.Node
	target placement.Table
	trace  *placement.Trace
}

// planStep returns the commands the controller would commit next for st
// at now, computing placement's target as the controller does.
func (ck *ClusterKit) planStep(st *state.State, now time.Time, last *simTarget) ([]state.Command, error) {
	pl := &planner{st: st, now: now, cfg: &ck.opts.cfg}
	nodes := eligibleNodes(st, now, &ck.opts.cfg)
	pl.eligible = len(nodes)
	prev := settledTable(st)
	if last.target == nil || !slices.Equal(last.nodes, nodes) ||
		!slices.EqualFunc(last.prev, prev, func(a, b placement.Partition) bool { return slices.Equal(a.Owners, b.Owners) }) {
		target, trace, err := placement.ComputeTrace(prev, nodes, placement.Config{
			Partitions: st.PartitionCount, ReplicationFactor: st.ReplicationFactor})
		if err != nil {
			return nil, err
		}
		*last = simTarget{prev: prev, nodes: nodes, target: target, trace: trace}
	}
	pl.target, pl.trace = last.target, last.trace
	return pl.plan(), nil
}

// commandMoves describes the owner changes cmd makes to st, before it is
// applied.
func commandMoves(st *state.State, cmd state.Command) []PlanMove {
	var out []PlanMove
	for _, m := range cmd.Moves {
		p := st.Partitions[m.Partition]
		switch cmd.Op {
		case state.OpCompleteMoves:
			j := p.Joining[p.JoiningIndex(m.Node)]
			pm := PlanMove{Partition: m.Partition, Kind: MoveCopy, To: m.Node, ToRole: RoleReplica,
				CopySource: j.From, Reason: stdcmp.Or(j.Reason, string(ReasonRebalance)), Rule: j.Rule}
			if len(p.Owners) == 0 || (len(p.Owners) == 1 && p.Owners[0] == m.Replaces) {
				pm.ToRole = RolePrimary
			}
			if m.Replaces != "" {
				pm.From, pm.FromRole = m.Replaces, stateRole(p, m.Replaces)
			}
			out = append(out, pm)
		case state.OpPromote:
			if p.Primary() != m.Node {
				out = append(out, PlanMove{Partition: m.Partition, Kind: MovePromote, From: p.Primary(),
					FromRole: RolePrimary, To: m.Node, ToRole: RolePrimary,
					Reason: stdcmp.Or(m.Reason, cmd.Reason, string(ReasonRebalance))})
			}
		case state.OpDropOwners:
			out = append(out, PlanMove{Partition: m.Partition, Kind: MoveDrop, From: m.Node,
				FromRole: stateRole(p, m.Node), ToRole: RoleNone, Reason: st.DropReason(m)})
		}
	}
	return out
}

func stateRole(p state.Partition, id string) Role {
	switch k := slices.Index(p.Owners, id); {
	case k == 0:
		return RolePrimary
	case k > 0:
		return RoleReplica
	}
	return RoleNone
}

// tableOf returns st's ready owners as a placement table.
func tableOf(st *state.State) placement.Table {
	t := make(placement.Table, len(st.Partitions))
	for i, p := range st.Partitions {
		t[i].Owners = p.Owners
	}
	return t
}

// balanceOf describes how evenly t spreads slots and primaries.
func balanceOf(t placement.Table) Balance {
	s := placement.Summarize(t)
	b := Balance{Nodes: make([]NodeLoad, len(s.Nodes)), SlotRatio: s.SlotRatio, PrimaryRatio: s.PrimaryRatio}
	slots := make([]int, len(s.Nodes))
	prims := make([]int, len(s.Nodes))
	for k, n := range s.Nodes {
		b.Nodes[k] = NodeLoad{ID: n.ID, Primaries: n.Primaries, Replicas: n.Slots - n.Primaries}
		slots[k], prims[k] = n.Slots, n.Primaries
	}
	b.Slots, b.Primaries = summarize(slots), summarize(prims)
	return b
}

// addSizes fills in the bytes of the copies from the sizes the copy
// sources report.
func (ck *ClusterKit) addSizes(c echo.Context, info *PlanInfo, sources map[string]string) {
	sizes := ck.gatherSizes(c.Request().Context(), sources)
	for k := range info.Moves {
		m := &info.Moves[k]
		if m.Kind != MoveCopy {
			continue
		}
		if n, ok := sizes[m.CopySource][m.Partition]; ok {
			m.Bytes = &n
			info.BytesToCopy += n
			info.BytesKnown++
		}
	}
}
