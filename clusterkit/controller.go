package clusterkit

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"clusterkit.dev/clusterkit/internal/state"
	"clusterkit.dev/clusterkit/placement"
)

// controllerTick is how often the leader's controller re-checks the cluster
// when nothing wakes it; changes wake it at once.
const controllerTick = time.Second

// runController runs on every node and acts only while the node is the raft
// leader: it commits the cluster settings, keeps the voter count at
// MaxVoters and the partition table balanced. It keeps nothing between
// runs: a new leader resumes from the committed state.
func (ck *ClusterKit) runController(ctx context.Context) {
	rn := ck.raftNode()
	leaderCh := rn.LeaderCh()
	tick := time.NewTicker(controllerTick)
	defer tick.Stop()
	var readyTerm uint64 // term in which this leader's FSM caught up
	for {
		select {
		case <-ctx.Done():
			return
		case <-leaderCh:
		case <-ck.ctlWake:
		case <-tick.C:
		}
		if rn.State() != raft.Leader {
			readyTerm = 0
			continue
		}
		term := rn.CurrentTerm()
		if readyTerm != term {
			// Apply everything committed by earlier leaders before deciding.
			if err := rn.Barrier(ck.opts.cfg.ApplyTimeout).Error(); err != nil {
				ck.log.Warn("controller barrier", "err", err)
				continue
			}
			readyTerm = term
		}
		if err := ck.reconcile(); err != nil && !errors.Is(err, ErrNotLeader) {
			ck.log.Warn("controller", "err", err)
			if errors.Is(err, ErrStaleVersion) {
				ck.wakeController()
			}
		}
	}
}

func (ck *ClusterKit) wakeController() {
	select {
	case ck.ctlWake <- struct{}{}:
	default:
	}
}

// reconcile takes one step towards the desired cluster; each step is one
// committed command, and the change it publishes wakes the next step.
func (ck *ClusterKit) reconcile() error {
	var st *state.State
	ck.fsm.read(func(s *state.State) { st = s.Clone() })
	if !st.Initialized() {
		cfg := ck.opts.cfg
		_, err := ck.apply(state.Command{Op: state.OpInit, ClusterName: cfg.ClusterName,
			PartitionCount:    cmp(cfg.PartitionCount, defaultPartitionCount),
			ReplicationFactor: cmp(cfg.ReplicationFactor, defaultReplicationFactor)})
		return err
	}
	if _, ok := st.Nodes[ck.opts.NodeID]; !ok {
		// The founding node commits itself; others are added by addMember.
		req := ck.joinRequest()
		_, err := ck.addMember(req)
		return err
	}
	if err := ck.balanceVoters(st); err != nil {
		return err
	}
	return ck.rebalance(st)
}

func cmp(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// balanceVoters promotes live non-voters while there are fewer voters than
// MaxVoters, so that a departed voter is replaced.
func (ck *ClusterKit) balanceVoters(st *state.State) error {
	ck.joinMu.Lock()
	defer ck.joinMu.Unlock()
	rn := ck.raftNode()
	servers, err := rn.configuration()
	if err != nil {
		return err
	}
	voters := 0
	var candidates []raft.Server
	for _, s := range servers {
		if s.Suffrage == raft.Voter {
			voters++
			continue
		}
		if n, ok := st.Nodes[string(s.ID)]; ok && n.Status == state.StatusAlive {
			candidates = append(candidates, s)
		}
	}
	slices.SortFunc(candidates, func(a, b raft.Server) int { return strings.Compare(string(a.ID), string(b.ID)) })
	for _, s := range candidates {
		if voters >= ck.opts.cfg.MaxVoters {
			break
		}
		if err := rn.AddVoter(s.ID, s.Address, 0, ck.opts.cfg.ApplyTimeout).Error(); err != nil {
			return raftErr(err)
		}
		ck.log.Info("promoted to voter", "server", s.ID)
		voters++
	}
	return nil
}

// rebalance commits a new partition table when placement's answer differs
// from the current one.
func (ck *ClusterKit) rebalance(st *state.State) error {
	nodes := make([]placement.Node, 0, len(st.Nodes))
	for _, id := range st.NodeIDs() {
		n := st.Nodes[id]
		if n.Status == state.StatusDead {
			continue
		}
		nodes = append(nodes, placement.Node{ID: n.ID, Zone: n.Zone, Weight: n.Weight})
	}
	prev := make(placement.Table, len(st.Partitions))
	for i, p := range st.Partitions {
		prev[i] = placement.Partition{Owners: p.Owners}
	}
	next, err := placement.Compute(prev, nodes, placement.Config{
		Partitions: st.PartitionCount, ReplicationFactor: st.ReplicationFactor})
	if err != nil {
		return err
	}
	owners := make([][]string, len(next))
	changed := false
	for i, p := range next {
		owners[i] = p.Owners
		if !slices.Equal(p.Owners, st.Partitions[i].Owners) {
			changed = true
		}
	}
	if !changed {
		return nil
	}
	_, err = ck.apply(state.Command{Op: state.OpSetTable, BaseVersion: st.Version, Owners: owners,
		Reason: string(tableReason(st, nodes))})
	return err
}

// tableReason says why a new table is needed: the first table, an owner
// that is dead or gone, a node that owns nothing yet, or balance.
func tableReason(st *state.State, eligible []placement.Node) Reason {
	owning := map[string]bool{}
	for _, p := range st.Partitions {
		for _, id := range p.Owners {
			owning[id] = true
		}
	}
	if len(owning) == 0 {
		return ReasonInitial
	}
	isEligible := map[string]bool{}
	for _, n := range eligible {
		isEligible[n.ID] = true
	}
	for id := range owning {
		if !isEligible[id] {
			return ReasonFailure
		}
	}
	for _, n := range eligible {
		if !owning[n.ID] {
			return ReasonJoin
		}
	}
	return ReasonRebalance
}
