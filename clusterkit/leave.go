package clusterkit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// Leave drains this node (its partitions move to the remaining nodes with
// make-before-break handoffs, see Drain), removes it from the cluster map
// and from raft, then stops it. A leader first hands leadership to another
// voter. Leave on the last node of a cluster only stops it. If ctx ends
// before the node has left, Leave returns ctx's error and the node keeps
// running, draining. A node that left starts again as a new member: give
// it a fresh DataDir, or the same one with a JoinAddr list.
func (ck *ClusterKit) Leave(ctx context.Context) error {
	if err := ck.leave(ctx); err != nil {
		return err
	}
	return ck.Stop()
}

func (ck *ClusterKit) leave(ctx context.Context) error {
	rn := ck.raftNode()
	if rn == nil {
		return ErrNotStarted
	}
	servers, err := rn.configuration()
	if err != nil {
		return fmt.Errorf("leave: %w", err)
	}
	if len(servers) <= 1 {
		return nil
	}
	if err := ck.Drain(ctx); err != nil {
		return fmt.Errorf("leave: %w", err)
	}
	req := LeaveRequest{ID: ck.opts.NodeID}
	for {
		if rn.State() == raft.Leader {
			if err := rn.LeadershipTransfer().Error(); err != nil {
				ck.log.Warn("leadership transfer before leave", "err", err)
			}
		}
		err := ck.leaveVia(ctx, req)
		if err == nil {
			return nil
		}
		var he *HTTPError
		if errors.As(err, &he) && he.Code >= 400 && he.Code < 500 {
			return fmt.Errorf("leave refused: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("leave: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(ck.opts.cfg.JoinRetryInterval):
		}
	}
}

// leaveVia asks the current leader (never this node) to remove req.ID.
func (ck *ClusterKit) leaveVia(ctx context.Context, req LeaveRequest) error {
	leader := ck.Leader()
	if leader == nil {
		return ErrNoLeader
	}
	if leader.ID == ck.opts.NodeID {
		return ErrNotLeader // still transferring
	}
	return ck.post(ctx, leader.IP, "/cluster/leave", req, nil)
}
