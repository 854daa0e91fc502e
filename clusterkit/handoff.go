package clusterkit

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"clusterkit.dev/clusterkit/internal/state"
)

// ReadyRequest is the body of POST /partitions/ready: node has copied
// partition and is ready to own it.
type ReadyRequest struct {
	Partition int    `json:"partition"`
	Node      string `json:"node"`
}

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
		return ck.completeHandoff(req)
	}
	leader := ck.Leader()
	if leader == nil {
		return ErrNoLeader
	}
	return ck.post(ctx, leader.IP, "/partitions/ready", req, nil)
}

// completeHandoff runs on the leader: the joining node becomes an owner
// and, in the same committed change, an owner that the target no longer
// wants is released. Reporting ready twice is harmless.
func (ck *ClusterKit) completeHandoff(req ReadyRequest) error {
	ck.handoffMu.Lock()
	defer ck.handoffMu.Unlock()
	var st *state.State
	ck.fsm.read(func(s *state.State) { st = s.Clone() })
	if req.Partition < 0 || req.Partition >= len(st.Partitions) {
		return badRequest("partition", fmt.Sprintf("%d is outside 0..%d", req.Partition, len(st.Partitions)-1))
	}
	p := st.Partitions[req.Partition]
	if p.IsOwner(req.Node) {
		return nil
	}
	k := p.JoiningIndex(req.Node)
	if k < 0 {
		return fmt.Errorf("%w: %q is not joining partition %d (the handoff was aborted)", ErrConflict, req.Node, req.Partition)
	}
	now := time.Now()
	pl, err := ck.planner(st, now)
	if err != nil {
		return err
	}
	release := pl.release(req.Partition, req.Node)
	if _, err := ck.apply(state.Command{Op: state.OpCompleteMove, Partition: req.Partition,
		NodeID: req.Node, Release: release}); err != nil {
		return err
	}
	ck.metrics.handoffs.WithLabelValues("completed").Inc()
	ck.metrics.handoffSeconds.Observe(now.Sub(time.UnixMilli(p.Joining[k].Since)).Seconds())
	return nil
}

// handleReady serves POST /partitions/ready, forwarded to the leader.
func (ck *ClusterKit) handleReady(c echo.Context) error {
	var req ReadyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Node == "" {
		return badRequest("node", "required")
	}
	if !ck.IsLeader() {
		if err := ck.forward(c, "/partitions/ready", req, nil); err != nil {
			return err
		}
	} else if ck.Node(req.Node) == nil {
		return fmt.Errorf("%w: %q", ErrUnknownNode, req.Node)
	} else if err := ck.completeHandoff(req); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}
