package clusterkit

import (
	"context"
	"slices"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// GetPartition returns the partition that key belongs to, with its owners
// in the current map. It returns ErrNoPartitionMap until this node has a
// map. It takes no lock and does not allocate; the returned value is a
// shared snapshot that must not be modified.
func (ck *ClusterKit) GetPartition(key string) (*Partition, error) {
	v := ck.view.Load()
	if !v.hasMap() {
		return nil, ErrNoPartitionMap
	}
	return &v.partitions[PartitionIndex(key, v.partitionCount)], nil
}

// GetPrimary returns the current primary of partition, or nil when the
// partition has none or is not a partition of this cluster. The answer comes
// from the current map, which may be newer than partition. The returned
// value is shared and must not be modified; it does not allocate.
func (ck *ClusterKit) GetPrimary(partition *Partition) *Node {
	o := ck.currentOwners(partition)
	if o == nil {
		return nil
	}
	return o.primary
}

// GetReplicas returns the current replicas of partition (its owners other
// than the primary), as a new slice.
func (ck *ClusterKit) GetReplicas(partition *Partition) []Node {
	o := ck.currentOwners(partition)
	if o == nil {
		return nil
	}
	return slices.Clone(o.replicas)
}

// GetNodes returns every current owner of partition, primary first, as a
// new slice.
func (ck *ClusterKit) GetNodes(partition *Partition) []Node {
	o := ck.currentOwners(partition)
	if o == nil || o.primary == nil {
		return nil
	}
	nodes := make([]Node, 0, 1+len(o.replicas))
	nodes = append(nodes, *o.primary)
	return append(nodes, o.replicas...)
}

// IsPrimary reports whether this node is partition's current primary. It
// takes no lock and does not allocate.
func (ck *ClusterKit) IsPrimary(partition *Partition) bool {
	p := ck.current(partition)
	return p != nil && p.PrimaryNode == ck.opts.NodeID
}

// IsReplica reports whether this node is one of partition's current
// replicas (an owner that is not the primary).
func (ck *ClusterKit) IsReplica(partition *Partition) bool {
	p := ck.current(partition)
	return p != nil && slices.Contains(p.ReplicaNodes, ck.opts.NodeID)
}

// GetMyNodeID returns this node's ID.
func (ck *ClusterKit) GetMyNodeID() string { return ck.opts.NodeID }

// OnPartitionChange registers hook to be called on this node whenever it
// gains a partition, with copyFrom a live node that owned the partition
// before (nil when there was none) and copyTo this node. It is
// OnPartitionEvent reduced to the events with OldRole RoleNone.
//
// Hooks run on a goroutine of the library, one change at a time in map
// version order, and never while a library lock is held: a hook may call
// any ClusterKit method. Delivery is at least once: after a restart a node
// is told again about the partitions it owns. A hook registered before
// Start sees every change from the first map on; one registered later sees
// the changes applied after it is registered.
func (ck *ClusterKit) OnPartitionChange(hook PartitionChangeHook) {
	ck.events.addHandler(func(_ context.Context, ev PartitionEvent) error {
		if ev.OldRole == RoleNone && ev.NewRole != RoleNone {
			hook(ev.PartitionID, ev.CopyFrom, ck.Node(ck.opts.NodeID))
		}
		return nil
	})
}

// OnPartitionEvent registers h to be called on this node whenever its role
// for a partition changes: it gains the partition (OldRole RoleNone, with
// CopyFrom to copy from), loses it (NewRole RoleNone: the data may be
// dropped), or is promoted or demoted between primary and replica. Events
// are delivered like OnPartitionChange's hooks: in map version order, at
// least once, never under a library lock.
func (ck *ClusterKit) OnPartitionEvent(h PartitionEventHandler) {
	ck.events.addHandler(h)
}

// current returns the current map's copy of partition.
func (ck *ClusterKit) current(partition *Partition) *Partition {
	if partition == nil {
		return nil
	}
	return ck.view.Load().partition(partition.Index)
}

// currentOwners returns the owners of partition in the current map.
func (ck *ClusterKit) currentOwners(partition *Partition) *partitionOwners {
	if partition == nil {
		return nil
	}
	return ck.view.Load().partitionOwners(partition.Index)
}

// Version returns the version of the map this node has applied; it
// increases with every committed change. 0 before the node has a map.
func (ck *ClusterKit) Version() uint64 {
	if v := ck.view.Load(); v != nil {
		return v.version
	}
	return 0
}

// PartitionCount returns the cluster's partition count, 0 before this node
// has received the cluster settings.
func (ck *ClusterKit) PartitionCount() int {
	if v := ck.view.Load(); v != nil {
		return v.partitionCount
	}
	return 0
}

// ReplicationFactor returns the cluster's replication factor, 0 before this
// node has received the cluster settings.
func (ck *ClusterKit) ReplicationFactor() int {
	if v := ck.view.Load(); v != nil {
		return v.replicationFactor
	}
	return 0
}

// Partitions returns every partition of the current map (nil before there
// is one). The slice and its values are shared and must not be modified.
func (ck *ClusterKit) Partitions() []Partition {
	v := ck.view.Load()
	if !v.hasMap() {
		return nil
	}
	return v.partitions
}

// Nodes returns the cluster's members, sorted by ID, with their states. The
// slice and its values are shared and must not be modified.
func (ck *ClusterKit) Nodes() []Node {
	if v := ck.view.Load(); v != nil {
		return v.nodeList
	}
	return nil
}

// Node returns the member with the given ID, or nil.
func (ck *ClusterKit) Node(id string) *Node {
	if v := ck.view.Load(); v != nil {
		return v.nodes[id]
	}
	return nil
}

// Leader returns the current raft leader as a member, or nil when no leader
// is known (or the leader is not yet in the map).
func (ck *ClusterKit) Leader() *Node {
	rn := ck.raftNode()
	if rn == nil {
		return nil
	}
	_, id := rn.LeaderWithID()
	if id == "" {
		return nil
	}
	return ck.Node(string(id))
}

// IsLeader reports whether this node is the raft leader.
func (ck *ClusterKit) IsLeader() bool {
	rn := ck.raftNode()
	return rn != nil && rn.State() == raft.Leader
}

// WaitForMap blocks until this node has a partition map whose version is
// at least minVersion, or ctx is done.
func (ck *ClusterKit) WaitForMap(ctx context.Context, minVersion uint64) error {
	for {
		ch := ck.viewChanged.Load()
		if v := ck.view.Load(); v.hasMap() && v.version >= minVersion {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-*ch:
		}
	}
}

// Registry returns the node's Prometheus registry, served on /metrics. An
// application may register its own collectors on it so that one scrape
// covers both.
func (ck *ClusterKit) Registry() *prometheus.Registry { return ck.metrics.registry }
