package clusterkit

import "slices"

// Partition is one partition of the key space and its owners at one map
// version. Values returned by ClusterKit are shared snapshots: read them,
// never modify them.
type Partition struct {
	// ID is "partition-<Index>".
	ID string `json:"id"`
	// Index is the partition number, 0 to PartitionCount-1.
	Index int `json:"index"`
	// PrimaryNode is the primary's node ID, or "" when the partition has no
	// owner.
	PrimaryNode string `json:"primary_node"`
	// ReplicaNodes are the replicas' node IDs (owners other than the
	// primary).
	ReplicaNodes []string `json:"replica_nodes"`
	// JoiningNodes are owners being added: they are copying the partition
	// from a live owner. They should receive writes (so that the copy
	// misses nothing) but neither serve reads nor count towards a quorum
	// until they are ready and become replicas.
	JoiningNodes []string `json:"joining_nodes"`
	// Epoch increases whenever the primary changes: a service can reject
	// writes stamped with an older epoch (fencing a deposed primary).
	Epoch uint64 `json:"epoch"`
	// Version is the map version this value was read from.
	Version uint64 `json:"version"`

	primary  *Node
	replicas []Node
	// joiningFrom[i] is the copy source of JoiningNodes[i].
	joiningFrom []string
}

// owns reports whether id is the primary or a replica.
func (p *Partition) owns(id string) bool {
	if p.PrimaryNode == id {
		return true
	}
	for _, r := range p.ReplicaNodes {
		if r == id {
			return true
		}
	}
	return false
}

// role returns id's role for p; a nil p is owned by no one.
func (p *Partition) role(id string) Role {
	switch {
	case p == nil:
		return RoleNone
	case p.PrimaryNode == id:
		return RolePrimary
	case p.owns(id):
		return RoleReplica
	case slices.Contains(p.JoiningNodes, id):
		return RoleJoining
	}
	return RoleNone
}
