package clusterkit

import (
	"slices"
	"time"

	"clusterkit.dev/clusterkit/internal/state"
	"clusterkit.dev/clusterkit/placement"
)

// planner decides the leader's next commands from the committed state and
// the target table that placement computed from it. It is a pure function
// of its inputs, so a new leader that starts from the same committed state
// makes the same decisions: nothing lives only in a leader's memory.
type planner struct {
	st     *state.State
	target placement.Table
	// trace says which placement rule chose each target owner.
	trace *placement.Trace
	now   time.Time
	cfg   *Config
	// eligible is the number of nodes placement could use.
	eligible int
}

func (pl *planner) node(id string) *state.Node { return pl.st.Nodes[id] }

func (pl *planner) alive(id string) bool {
	n := pl.node(id)
	return n != nil && n.Status == state.StatusAlive
}

func (pl *planner) dead(id string) bool {
	n := pl.node(id)
	return n == nil || n.Status == state.StatusDead
}

// deadPastGrace reports whether id has been dead for ReReplicationDelay
// (or is no member at all).
func (pl *planner) deadPastGrace(id string) bool {
	n := pl.node(id)
	return n == nil || (n.Status == state.StatusDead && pl.now.Sub(time.UnixMilli(n.StatusSince)) >= pl.cfg.ReReplicationDelay)
}

// settled reports whether id has been alive long enough to be made
// primary: a node back from the dead waits ReReplicationDelay so that the
// application can catch it up first.
func (pl *planner) settled(id string) bool {
	n := pl.node(id)
	if n == nil || n.Status != state.StatusAlive {
		return false
	}
	return n.StatusSince == 0 || pl.now.Sub(time.UnixMilli(n.StatusSince)) >= pl.cfg.ReReplicationDelay
}

// want is the number of owners each partition should have.
func (pl *planner) want() int { return min(pl.st.ReplicationFactor, pl.eligible) }

func (pl *planner) inTarget(i int, id string) bool {
	return i < len(pl.target) && slices.Contains(pl.target[i].Owners, id)
}

func (pl *planner) liveTargetOwners(i int, p state.Partition) int {
	n := 0
	for _, id := range p.Owners {
		if pl.inTarget(i, id) && !pl.dead(id) {
			n++
		}
	}
	return n
}

// plan returns the commands to commit now, in order: failovers first, then
// aborted handoffs, primary handovers, released owners and new handoffs.
func (pl *planner) plan() []state.Command {
	var cmds []state.Command
	add := func(op state.Op, reason Reason, moves []state.Move) {
		if len(moves) > 0 {
			cmds = append(cmds, state.Command{Op: op, Reason: string(reason), Moves: moves, At: pl.now.UnixMilli()})
		}
	}
	failovers := pl.failovers()
	add(state.OpPromote, ReasonFailure, failovers)
	promoted := map[int]bool{}
	for _, m := range failovers {
		promoted[m.Partition] = true
	}
	aborts := pl.aborts()
	add(state.OpAbortMoves, "", aborts)
	handovers := pl.handovers(promoted)
	add(state.OpPromote, ReasonRebalance, handovers)
	newPrimary := map[int]string{}
	for _, m := range append(failovers, handovers...) {
		newPrimary[m.Partition] = m.Node
	}
	add(state.OpDropOwners, "", pl.drops(newPrimary))
	add(state.OpBeginMoves, "", pl.begins(len(aborts)))
	return cmds
}

// failovers promotes a live ready owner wherever the primary is dead:
// the target's primary if it qualifies, else the first live replica.
func (pl *planner) failovers() []state.Move {
	var moves []state.Move
	for i, p := range pl.st.Partitions {
		if len(p.Owners) == 0 || !pl.dead(p.Owners[0]) {
			continue
		}
		cand := ""
		if tp := pl.target[i].Primary(); tp != "" && p.IsOwner(tp) && pl.alive(tp) {
			cand = tp
		}
		for _, id := range p.Owners[1:] {
			if cand == "" && pl.alive(id) {
				cand = id
			}
		}
		if cand != "" {
			moves = append(moves, state.Move{Partition: i, Node: cand})
		}
	}
	return moves
}

// aborts ends the handoffs that can no longer finish or are no longer
// wanted: the joiner left the target or is not alive, its source is gone,
// or HandoffTimeout passed.
func (pl *planner) aborts() []state.Move {
	var moves []state.Move
	for i, p := range pl.st.Partitions {
		for _, j := range p.Joining {
			gone := j.From != "" && (!p.IsOwner(j.From) || pl.dead(j.From))
			late := pl.now.Sub(time.UnixMilli(j.Since)) > pl.cfg.HandoffTimeout
			if !pl.inTarget(i, j.Node) || !pl.alive(j.Node) || gone || late {
				moves = append(moves, state.Move{Partition: i, Node: j.Node, Reason: abortReason(late)})
			}
		}
	}
	return moves
}

func abortReason(late bool) string {
	if late {
		return "timeout"
	}
	return "replanned"
}

// handovers moves the primary to the target's primary where that node is a
// ready, settled owner and the current primary is alive (a dead primary is
// a failover's business). A handover only for balance, where the current
// primary stays an owner, waits until every member is alive: while a node
// is down, placement would shuffle primaries towards it, and each shuffle
// is a failover for the application.
func (pl *planner) handovers(promoted map[int]bool) []state.Move {
	healthy := true
	for _, n := range pl.st.Nodes {
		healthy = healthy && n.Status == state.StatusAlive
	}
	var moves []state.Move
	for i, p := range pl.st.Partitions {
		if promoted[i] || len(p.Owners) == 0 {
			continue
		}
		tp, cp := pl.target[i].Primary(), p.Owners[0]
		if tp == "" || tp == cp || !p.IsOwner(tp) || !pl.settled(tp) || pl.dead(cp) {
			continue
		}
		if pl.inTarget(i, cp) && !healthy {
			continue
		}
		m := state.Move{Partition: i, Node: tp}
		if pl.node(cp).Draining {
			m.Reason = string(ReasonDrain)
		}
		moves = append(moves, m)
	}
	return moves
}

// drops releases owners the target no longer wants once enough live target
// owners hold the partition; a dead owner past its grace period is
// released at once. A dead owner within it (one that died while draining)
// keeps its slot like any dead node: the application's copies count on a
// majority of the owners that took a write, and releasing an owner that
// may hold writes the others lack would let a smaller majority outvote
// it. The primary is released only after a handover.
func (pl *planner) drops(newPrimary map[int]string) []state.Move {
	var moves []state.Move
	for i, p := range pl.st.Partitions {
		enough := pl.liveTargetOwners(i, p) >= pl.want()
		primary := p.Primary()
		if np, ok := newPrimary[i]; ok {
			primary = np
		}
		for _, id := range p.Owners {
			if pl.inTarget(i, id) || id == primary {
				continue
			}
			if enough || pl.deadPastGrace(id) {
				moves = append(moves, state.Move{Partition: i, Node: id})
			}
		}
	}
	return moves
}

// begins starts handoffs to the target owners that are neither owners nor
// joining, within MaxConcurrentMoves: partitions short of live owners
// first. Each joiner is paired with an owner the target no longer wants
// (dead ones first, the primary last), which it replaces when it is ready.
func (pl *planner) begins(aborted int) []state.Move {
	inFlight := -aborted
	for _, p := range pl.st.Partitions {
		inFlight += len(p.Joining)
	}
	budget := pl.cfg.MaxConcurrentMoves - max(inFlight, 0)
	if budget <= 0 {
		return nil
	}
	var recovery, balance []state.Move
	for i, p := range pl.st.Partitions {
		source := ""
		for _, id := range p.Owners {
			if pl.alive(id) {
				source = id
				break
			}
		}
		extras := pl.replaceable(i, p)
		short := pl.liveTargetOwners(i, p) < pl.want()
		for _, id := range pl.target[i].Owners {
			if p.IsOwner(id) || p.JoiningIndex(id) >= 0 || !pl.alive(id) {
				continue
			}
			m := state.Move{Partition: i, Node: id, From: source, Reason: string(pl.moveReason(p, id)),
				Rule: pl.trace.OwnerRule(i, id).String()}
			if len(extras) > 0 {
				m.Replaces, extras = extras[0], extras[1:]
			}
			if short {
				recovery = append(recovery, m)
			} else {
				balance = append(balance, m)
			}
		}
	}
	moves := append(recovery, balance...)
	return moves[:min(len(moves), budget)]
}

// replaceable lists p's owners that the target no longer wants and no
// joiner is replacing yet: dead first, the primary last.
func (pl *planner) replaceable(i int, p state.Partition) []string {
	var dead, live []string
	primary := ""
	for k, id := range p.Owners {
		if pl.inTarget(i, id) || slices.ContainsFunc(p.Joining, func(j state.Joining) bool { return j.Replaces == id }) {
			continue
		}
		switch {
		case pl.dead(id):
			dead = append(dead, id)
		case k == 0:
			primary = id
		default:
			live = append(live, id)
		}
	}
	out := append(dead, live...)
	if primary != "" {
		out = append(out, primary)
	}
	return out
}

// moveReason says why node is added to p.
func (pl *planner) moveReason(p state.Partition, node string) Reason {
	for _, id := range p.Owners {
		if n := pl.node(id); n == nil || n.Status == state.StatusDead {
			return ReasonFailure
		} else if n.Draining {
			return ReasonDrain
		}
	}
	for _, q := range pl.st.Partitions {
		if q.IsOwner(node) {
			return ReasonRebalance
		}
	}
	return ReasonJoin
}

// release returns the owner that the completed handoff j releases: the
// owner it was meant to replace, unless that is the primary (a primary is
// released only after a handover).
func release(p state.Partition, j state.Joining) string {
	if j.Replaces != "" && p.IsOwner(j.Replaces) && p.Primary() != j.Replaces {
		return j.Replaces
	}
	return ""
}
