package clusterkit

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"clusterkit.dev/clusterkit/internal/state"
	"clusterkit.dev/clusterkit/placement"
)

// runController runs on every node and acts only while the node is the raft
// leader: it commits the cluster settings, tracks liveness, fails over dead
// primaries, keeps the voter count at MaxVoters and moves partitions
// towards placement's target with make-before-break handoffs. It keeps
// nothing that a new leader could not rebuild from the committed state.
func (ck *ClusterKit) runController(ctx context.Context) {
	rn := ck.raftNode()
	leaderCh := rn.LeaderCh()
	tick := time.NewTicker(min(max(ck.opts.cfg.SuspectTimeout/4, 50*time.Millisecond), time.Second))
	defer tick.Stop()
	var readyTerm uint64 // term in which this leader's FSM caught up
	var prevLeader string
	var prevContact, lastRejoin time.Time
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
			if _, id := rn.LeaderWithID(); id != "" && string(id) != ck.opts.NodeID {
				prevLeader, prevContact = string(id), rn.LastContact()
			}
			if ck.cutOff() && time.Since(lastRejoin) > 2*ck.opts.cfg.DeadTimeout {
				// A node the cluster removed hears from no leader; asking to
				// join again is a no-op for a member.
				lastRejoin = time.Now()
				ck.rejoinOnce(ctx)
			}
			continue
		}
		term := rn.CurrentTerm()
		if readyTerm != term {
			// Apply everything committed by earlier leaders before deciding.
			if err := rn.Barrier(ck.opts.cfg.ApplyTimeout).Error(); err != nil {
				ck.log.Warn("controller barrier", "err", err)
				continue
			}
			ck.detector.reset(prevLeader, prevContact)
			readyTerm = term
		}
		if err := ck.reconcile(time.Now()); err != nil && !errors.Is(err, ErrNotLeader) {
			ck.log.Warn("controller", "err", err)
			ck.wakeController()
		}
	}
}

func (ck *ClusterKit) wakeController() {
	select {
	case ck.ctlWake <- struct{}{}:
	default:
	}
}

// reconcile takes one step towards the desired cluster. Each step commits
// a few commands; the change they publish wakes the next step.
func (ck *ClusterKit) reconcile(now time.Time) error {
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
		_, err := ck.addMember(ck.joinRequest())
		return err
	}
	if first(st) && ck.addFoundingMembers(st) {
		return nil
	}
	if changed, err := ck.updateLiveness(st, now); changed || err != nil {
		return err
	}
	if err := ck.balanceVoters(st); err != nil {
		return err
	}
	ck.planMu.Lock()
	defer ck.planMu.Unlock()
	ck.fsm.read(func(s *state.State) { st = s.Clone() })
	pl, err := ck.planner(st, now)
	if err != nil {
		return err
	}
	if first(st) {
		return ck.initialTable(st, pl.target)
	}
	cmds := pl.plan()
	for _, cmd := range cmds {
		if _, err := ck.apply(cmd); err != nil {
			return err
		}
		ck.observeCommand(cmd, st, now)
	}
	if len(cmds) == 0 {
		return ck.removeDeparted(st, now)
	}
	return nil
}

func cmp(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// first reports whether no partition has ever had an owner.
func first(st *state.State) bool {
	for _, p := range st.Partitions {
		if len(p.Owners) > 0 || len(p.Joining) > 0 {
			return false
		}
	}
	return true
}

// initialTable commits the first table directly: there is no data to copy.
func (ck *ClusterKit) initialTable(st *state.State, target placement.Table) error {
	owners := make([][]string, len(target))
	for i, p := range target {
		owners[i] = p.Owners
	}
	_, err := ck.apply(state.Command{Op: state.OpSetTable, BaseVersion: st.Version, Owners: owners,
		Reason: string(ReasonInitial), At: time.Now().UnixMilli()})
	return err
}

// updateLiveness commits the detector's view of every member's liveness.
func (ck *ClusterKit) updateLiveness(st *state.State, now time.Time) (bool, error) {
	changed := false
	for _, id := range st.NodeIDs() {
		want := state.StatusAlive
		if id != ck.opts.NodeID {
			want = ck.detector.status(id, now, &ck.opts.cfg)
		}
		if st.Nodes[id].Status == want {
			continue
		}
		if _, err := ck.apply(state.Command{Op: state.OpSetStatus, NodeID: id, Status: want, At: now.UnixMilli()}); err != nil {
			return changed, err
		}
		ck.log.Info("node status", "member", id, "status", want)
		if want == state.StatusDead {
			ck.metrics.deaths.Inc()
		}
		changed = true
	}
	return changed, nil
}

// targetCache keeps the leader's last placement answer, keyed by the state
// version and the eligible nodes it was computed from. It only saves work:
// any leader recomputes the same table from the same committed state.
type targetCache struct {
	mu      sync.Mutex
	version uint64
	nodes   []placement.Node
	table   placement.Table
	trace   *placement.Trace
}

// planner returns a planner for st, computing placement's target for it.
func (ck *ClusterKit) planner(st *state.State, now time.Time) (*planner, error) {
	pl := &planner{st: st, now: now, cfg: &ck.opts.cfg}
	nodes := eligibleNodes(st, now, &ck.opts.cfg)
	pl.eligible = len(nodes)
	ck.target.mu.Lock()
	defer ck.target.mu.Unlock()
	if ck.target.table != nil && ck.target.version == st.Version && slices.Equal(ck.target.nodes, nodes) {
		pl.target, pl.trace = ck.target.table, ck.target.trace
		return pl, nil
	}
	target, trace, err := placement.ComputeTrace(settledTable(st), nodes, placement.Config{
		Partitions: st.PartitionCount, ReplicationFactor: st.ReplicationFactor})
	if err != nil {
		return nil, err
	}
	ck.target.version, ck.target.nodes, ck.target.table, ck.target.trace = st.Version, nodes, target, trace
	pl.target, pl.trace = target, trace
	return pl, nil
}

// settledTable is st's table as it will be once the handoffs in flight
// complete: placement starts from it, so that it confirms them instead of
// re-planning.
func settledTable(st *state.State) placement.Table {
	prev := make(placement.Table, len(st.Partitions))
	for i, p := range st.Partitions {
		owners := slices.DeleteFunc(slices.Clone(p.Owners), func(id string) bool {
			return slices.ContainsFunc(p.Joining, func(j state.Joining) bool { return j.Replaces == id })
		})
		for _, j := range p.Joining {
			owners = append(owners, j.Node)
		}
		prev[i] = placement.Partition{Owners: owners}
	}
	return prev
}

// eligibleNodes are the nodes placement may give partitions: not draining,
// and not dead for longer than ReReplicationDelay.
func eligibleNodes(st *state.State, now time.Time, cfg *Config) []placement.Node {
	var nodes []placement.Node
	for _, id := range st.NodeIDs() {
		n := st.Nodes[id]
		if n.Draining || (n.Status == state.StatusDead && now.Sub(time.UnixMilli(n.StatusSince)) >= cfg.ReReplicationDelay) {
			continue
		}
		nodes = append(nodes, placement.Node{ID: n.ID, Zone: n.Zone, Weight: n.Weight})
	}
	return nodes
}

// removeDeparted removes members that have been dead past
// ReReplicationDelay and hold no partition any more, from the map and
// from raft. Such a node may join again later.
func (ck *ClusterKit) removeDeparted(st *state.State, now time.Time) error {
	for _, id := range st.NodeIDs() {
		n := st.Nodes[id]
		if n.Status != state.StatusDead || now.Sub(time.UnixMilli(n.StatusSince)) < ck.opts.cfg.ReReplicationDelay || holdsAny(st, id) {
			continue
		}
		ck.log.Info("removing dead member", "member", id)
		if err := ck.removeMember(id); err != nil {
			return err
		}
		ck.detector.resumed(id)
	}
	return nil
}

func holdsAny(st *state.State, id string) bool {
	for _, p := range st.Partitions {
		if p.IsOwner(id) || p.JoiningIndex(id) >= 0 {
			return true
		}
	}
	return false
}

// observeCommand records metrics and logs for a committed plan step.
func (ck *ClusterKit) observeCommand(cmd state.Command, st *state.State, now time.Time) {
	switch cmd.Op {
	case state.OpPromote:
		if cmd.Reason == string(ReasonFailure) {
			ck.metrics.failovers.Add(float64(len(cmd.Moves)))
			for _, m := range cmd.Moves {
				if n := st.Nodes[st.Partitions[m.Partition].Primary()]; n != nil && n.StatusSince > 0 {
					if since, ok := ck.detector.silentSince(n.ID); ok {
						ck.metrics.failoverSeconds.Observe(now.Sub(since).Seconds())
					}
				}
			}
			ck.log.Info("failover", "partitions", len(cmd.Moves))
		}
	case state.OpAbortMoves:
		for _, m := range cmd.Moves {
			ck.metrics.handoffs.WithLabelValues(m.Reason).Inc()
			if m.Reason == "timeout" {
				ck.log.Warn("handoff timed out", "partition", m.Partition, "joiner", m.Node)
			}
		}
	case state.OpBeginMoves:
		ck.log.Debug("handoffs started", "count", len(cmd.Moves))
	}
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

// cutOff reports whether this node, a member with a join list, has heard
// from no leader for twice DeadTimeout: the cluster may have removed it.
func (ck *ClusterKit) cutOff() bool {
	ck.mu.Lock()
	member := ck.isMember
	ck.mu.Unlock()
	if !member || len(ck.opts.joinAddrs) == 0 {
		return false
	}
	last := ck.raftNode().LastContact()
	return last.IsZero() || time.Since(last) > 2*ck.opts.cfg.DeadTimeout
}

// rejoinOnce asks each member of the join list once to add this node.
func (ck *ClusterKit) rejoinOnce(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, ck.opts.cfg.ApplyTimeout)
	defer cancel()
	req := ck.joinRequest()
	for _, addr := range ck.opts.joinAddrs {
		var resp JoinResponse
		if err := ck.post(ctx, addr, "/cluster/join", req, &resp); err == nil {
			if !resp.AlreadyMember {
				ck.log.Info("joined again after being cut off", "via", addr)
			}
			return
		}
	}
}
