package clusterkit

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"clusterkit.dev/clusterkit/internal/state"
)

// joiningNow reports whether this node is joining partition in the current
// map.
func (ck *ClusterKit) joiningNow(partition int) bool {
	p := ck.view.Load().partition(partition)
	return p != nil && slices.Contains(p.JoiningNodes, ck.opts.NodeID)
}

// reportReady tells the leader that this node has copied partition.
func (ck *ClusterKit) reportReady(ctx context.Context, partition int) error {
	req := ReadyRequest{Partition: partition, Node: ck.opts.NodeID}
	if ck.IsLeader() {
		return ck.completeHandoff(ctx, req)
	}
	leader := ck.Leader()
	if leader == nil {
		return ErrNoLeader
	}
	return ck.post(ctx, leader.IP, "/partitions/ready", req, nil)
}

// readyBatch gathers the ready reports that arrive while the leader commits
// the previous batch, so that a node taking over hundreds of partitions
// costs a few commits, not hundreds.
type readyBatch struct {
	mu      sync.Mutex
	pending []readyItem
	wake    chan struct{}
}

type readyItem struct {
	req  ReadyRequest
	done chan error
}

// completeHandoff runs on the leader: the joining node becomes an owner
// and, in the same committed change, the owner it replaces is released.
// Reporting ready twice is harmless; reporting for a handoff that was
// aborted meanwhile is an ErrConflict or, when the abort races the commit,
// a no-op.
func (ck *ClusterKit) completeHandoff(ctx context.Context, req ReadyRequest) error {
	item := readyItem{req: req, done: make(chan error, 1)}
	b := &ck.ready
	b.mu.Lock()
	b.pending = append(b.pending, item)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	select {
	case err := <-item.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runReady commits pending ready reports in batches until ctx ends; the
// reports that are still pending then get ErrStopped.
func (ck *ClusterKit) runReady(ctx context.Context) {
	b := &ck.ready
	for {
		select {
		case <-ctx.Done():
			b.mu.Lock()
			for _, it := range b.pending {
				it.done <- ErrStopped
			}
			b.pending = nil
			b.mu.Unlock()
			return
		case <-b.wake:
		}
		b.mu.Lock()
		items := b.pending
		b.pending = nil
		b.mu.Unlock()
		if len(items) == 0 {
			continue
		}

		ck.planMu.Lock()
		var st *state.State
		ck.fsm.read(func(s *state.State) { st = s.Clone() })
		now := time.Now()
		var moves []state.Move
		var since []int64
		var waiting []readyItem
		for _, it := range items {
			err := ck.checkReady(st, it.req)
			if err != nil || st.Partitions[it.req.Partition].IsOwner(it.req.Node) {
				it.done <- err
				continue
			}
			p := st.Partitions[it.req.Partition]
			j := p.Joining[p.JoiningIndex(it.req.Node)]
			moves = append(moves, state.Move{Partition: it.req.Partition, Node: it.req.Node, Replaces: release(p, j)})
			since = append(since, j.Since)
			waiting = append(waiting, it)
		}
		if len(moves) == 0 {
			ck.planMu.Unlock()
			ck.wakeReady()
			continue
		}
		_, err := ck.apply(state.Command{Op: state.OpCompleteMoves, Moves: moves, At: now.UnixMilli()})
		ck.planMu.Unlock()
		if err == nil {
			ck.metrics.handoffs.WithLabelValues("completed").Add(float64(len(moves)))
			for _, s := range since {
				ck.metrics.handoffSeconds.Observe(now.Sub(time.UnixMilli(s)).Seconds())
			}
		}
		for _, it := range waiting {
			it.done <- err
		}
		ck.wakeReady() // reports that arrived during the commit
	}
}

func (ck *ClusterKit) wakeReady() {
	select {
	case ck.ready.wake <- struct{}{}:
	default:
	}
}

// checkReady validates a ready report against st.
func (ck *ClusterKit) checkReady(st *state.State, req ReadyRequest) error {
	if req.Partition < 0 || req.Partition >= len(st.Partitions) {
		return badRequest("partition", fmt.Sprintf("%d is outside 0..%d", req.Partition, len(st.Partitions)-1))
	}
	if _, ok := st.Nodes[req.Node]; !ok {
		return fmt.Errorf("%w: %q", ErrUnknownNode, req.Node)
	}
	p := st.Partitions[req.Partition]
	if !p.IsOwner(req.Node) && p.JoiningIndex(req.Node) < 0 {
		return fmt.Errorf("%w: %q is not joining partition %d (the handoff was aborted)", ErrConflict, req.Node, req.Partition)
	}
	return nil
}
