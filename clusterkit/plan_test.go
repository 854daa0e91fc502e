package clusterkit

import (
	"testing"
	"time"

	"clusterkit.dev/clusterkit/internal/state"
	"clusterkit.dev/clusterkit/placement"
)

func planState(t *testing.T, owners [][]string, nodes ...string) *state.State {
	t.Helper()
	st := state.New()
	apply := func(c state.Command) {
		if _, err := st.Apply(c); err != nil {
			t.Fatal(err)
		}
	}
	apply(state.Command{Op: state.OpInit, PartitionCount: len(owners), ReplicationFactor: 2})
	for _, id := range nodes {
		apply(state.Command{Op: state.OpJoin, Node: &state.Node{ID: id, HTTPAddr: id + ":1", RaftAddr: id + ":2"}})
	}
	apply(state.Command{Op: state.OpSetTable, BaseVersion: st.Version, Owners: owners})
	return st
}

func table(owners ...[]string) placement.Table {
	t := make(placement.Table, len(owners))
	for i, o := range owners {
		t[i] = placement.Partition{Owners: o}
	}
	return t
}

// A partition that lost an owner is repaired before balancing moves, and
// each joiner is paired with the owner it replaces.
func TestPlanRecoveryFirst(t *testing.T) {
	st := planState(t, [][]string{{"a", "b"}, {"a", "b"}}, "a", "b", "c", "d")
	st.Nodes["b"].Status, st.Nodes["b"].StatusSince = state.StatusDead, 1
	cfg := LocalConfig()
	cfg.MaxConcurrentMoves = 1
	now := time.UnixMilli(1).Add(time.Hour)
	pl := &planner{st: st, now: now, cfg: &cfg, eligible: 3,
		target: table([]string{"a", "c"}, []string{"d", "a"})}
	cmds := pl.plan()
	var begin *state.Command
	for i := range cmds {
		if cmds[i].Op == state.OpBeginMoves {
			begin = &cmds[i]
		}
	}
	if begin == nil || len(begin.Moves) != 1 {
		t.Fatalf("plan %+v: want one handoff (MaxConcurrentMoves 1)", cmds)
	}
	// Partition 0 lost b (dead): recovery. Partition 1 too, but both are
	// short; the first short one goes first, replacing the dead owner.
	if m := begin.Moves[0]; m.Partition != 0 || m.Node != "c" || m.From != "a" || m.Replaces != "b" || m.Reason != string(ReasonFailure) {
		t.Fatalf("handoff %+v", m)
	}
}

// A node back from the dead is not made primary before ReReplicationDelay.
func TestPlanHandoverWaitsForASettledNode(t *testing.T) {
	st := planState(t, [][]string{{"a", "b"}}, "a", "b")
	cfg := LocalConfig()
	now := time.UnixMilli(1_000_000)
	st.Nodes["b"].StatusSince = now.Add(-cfg.ReReplicationDelay / 2).UnixMilli()
	pl := &planner{st: st, now: now, cfg: &cfg, eligible: 2, target: table([]string{"b", "a"})}
	if cmds := pl.plan(); len(cmds) != 0 {
		t.Fatalf("handover to a node alive for half the delay: %+v", cmds)
	}
	pl.now = now.Add(cfg.ReReplicationDelay)
	cmds := pl.plan()
	if len(cmds) != 1 || cmds[0].Op != state.OpPromote || cmds[0].Moves[0].Node != "b" {
		t.Fatalf("plan %+v: want b promoted once settled", cmds)
	}
}

// A dead primary fails over to a live replica in the same plan, and a
// handoff past HandoffTimeout is aborted.
func TestPlanFailoverAndTimeout(t *testing.T) {
	st := planState(t, [][]string{{"a", "b"}, {"b", "a"}}, "a", "b", "c")
	st.Nodes["a"].Status = state.StatusDead
	st.Partitions[1].Joining = []state.Joining{{Node: "c", From: "b", Since: 0}}
	cfg := LocalConfig()
	pl := &planner{st: st, now: time.UnixMilli(0).Add(cfg.HandoffTimeout + time.Second), cfg: &cfg, eligible: 3,
		target: table([]string{"b", "a"}, []string{"b", "c"})}
	cmds := pl.plan()
	if len(cmds) < 2 || cmds[0].Op != state.OpPromote || cmds[0].Moves[0] != (state.Move{Partition: 0, Node: "b"}) {
		t.Fatalf("plan %+v: want b promoted for partition 0 first", cmds)
	}
	if cmds[1].Op != state.OpAbortMoves || cmds[1].Moves[0].Reason != "timeout" {
		t.Fatalf("plan %+v: want the late handoff aborted", cmds)
	}
}

// While a member is down, primaries are not shuffled for balance, only
// failed over; a primary that must leave (draining) is still handed over.
func TestPlanNoBalanceHandoverWhileDegraded(t *testing.T) {
	st := planState(t, [][]string{{"a", "b"}, {"c", "a"}}, "a", "b", "c")
	st.Nodes["c"].Status = state.StatusSuspect
	cfg := LocalConfig()
	pl := &planner{st: st, now: time.UnixMilli(0).Add(time.Hour), cfg: &cfg, eligible: 3,
		target: table([]string{"b", "a"}, []string{"c", "a"})}
	if cmds := pl.plan(); len(cmds) != 0 {
		t.Fatalf("balance handover while c is suspect: %+v", cmds)
	}
	st.Nodes["a"].Draining = true
	pl.target = table([]string{"b", "c"}, []string{"c", "b"})
	cmds := pl.plan()
	if len(cmds) == 0 || cmds[0].Op != state.OpPromote || cmds[0].Moves[0] != (state.Move{Partition: 0, Node: "b", Reason: "drain"}) {
		t.Fatalf("plan %+v: want the draining primary handed over to b", cmds)
	}
}

// A draining owner that dies keeps its slot for ReReplicationDelay, like
// any dead node, until its replacement is ready: the others may lack
// writes that only it and a lost primary hold. After the delay it goes.
func TestPlanDeadDrainingOwnerKeepsItsSlotForTheDelay(t *testing.T) {
	st := planState(t, [][]string{{"a", "b", "c"}}, "a", "b", "c", "d")
	st.ReplicationFactor = 3
	cfg := LocalConfig()
	now := time.UnixMilli(1_000_000)
	st.Nodes["b"].Draining = true
	st.Nodes["b"].Status, st.Nodes["b"].StatusSince = state.StatusDead, now.Add(-cfg.ReReplicationDelay/2).UnixMilli()
	pl := &planner{st: st, now: now, cfg: &cfg, eligible: 3, target: table([]string{"a", "c", "d"})}
	for _, c := range pl.plan() {
		if c.Op == state.OpDropOwners {
			t.Fatalf("plan %+v: the dead draining owner was released within ReReplicationDelay", c)
		}
	}
	pl.now = now.Add(cfg.ReReplicationDelay)
	dropped := false
	for _, c := range pl.plan() {
		dropped = dropped || (c.Op == state.OpDropOwners && c.Moves[0] == state.Move{Partition: 0, Node: "b"})
	}
	if !dropped {
		t.Fatalf("plan %+v: want b released once dead for ReReplicationDelay", pl.plan())
	}
}
