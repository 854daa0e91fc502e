package clusterkit

import (
	"context"
	"fmt"

	"clusterkit.dev/clusterkit/internal/state"
)

// Drain moves every partition this node owns to other nodes with
// make-before-break handoffs, and returns once the node owns nothing: it can
// then be stopped without leaving any partition under-replicated. The node
// stays a member (use Leave to also leave the cluster) and gets no new
// partitions until the drain is cancelled through POST /cluster/drain with
// "draining": false. Drain returns ctx's error if ctx ends first; the drain
// goes on.
func (ck *ClusterKit) Drain(ctx context.Context) error {
	if err := ck.setDraining(ctx, ck.opts.NodeID, true); err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	for {
		ch := ck.viewChanged.Load()
		if v := ck.view.Load(); v.hasMap() && !v.holds(ck.opts.NodeID) {
			n := v.nodes[ck.opts.NodeID]
			if n != nil && n.Draining {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("drain: %w", ctx.Err())
		case <-*ch:
		}
	}
}

// setDraining commits a node's draining flag through the leader.
func (ck *ClusterKit) setDraining(ctx context.Context, id string, draining bool) error {
	if ck.IsLeader() {
		_, err := ck.apply(state.Command{Op: state.OpSetDraining, NodeID: id, Draining: draining})
		return err
	}
	leader := ck.Leader()
	if leader == nil {
		return ErrNoLeader
	}
	return ck.post(ctx, leader.IP, "/cluster/drain", DrainRequest{ID: id, Draining: &draining}, nil)
}

// holds reports whether id owns or is joining any partition.
func (v *view) holds(id string) bool {
	for i := range v.partitions {
		if roleOf(&v.partitions[i], id) != RoleNone {
			return true
		}
	}
	return false
}

// safeToStop reports whether stopping id now would leave no partition with
// fewer live ready owners than min(ReplicationFactor, live nodes).
func (v *view) safeToStop(id string) bool {
	live := 0
	for _, n := range v.nodeList {
		if n.State == NodeAlive && n.ID != id {
			live++
		}
	}
	want := max(min(v.replicationFactor, live), 1)
	for i := range v.partitions {
		p, o := &v.partitions[i], &v.owners[i]
		if roleOf(p, id) == RoleNone {
			continue
		}
		others := 0
		if o.primary != nil && p.PrimaryNode != id && o.primary.State == NodeAlive {
			others++
		}
		for _, r := range o.replicas {
			if r.ID != id && r.State == NodeAlive {
				others++
			}
		}
		if others < want {
			return false
		}
	}
	return true
}
