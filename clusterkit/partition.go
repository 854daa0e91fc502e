package clusterkit

import "slices"

// partitionOwners is what a view derives from one of its partitions for the
// library's own use: the owners as Node values and where each joining node
// copies from. The Partition value handed to users holds only node IDs.
type partitionOwners struct {
	primary  *Node
	replicas []Node
	// joiningFrom[i] is the copy source of the partition's JoiningNodes[i].
	joiningFrom []string
}

// owns reports whether id is p's primary or one of its replicas.
func owns(p *Partition, id string) bool {
	return p.PrimaryNode == id || slices.Contains(p.ReplicaNodes, id)
}

// roleOf returns id's role for p; a nil p is owned by no one.
func roleOf(p *Partition, id string) Role {
	switch {
	case p == nil:
		return RoleNone
	case p.PrimaryNode == id:
		return RolePrimary
	case owns(p, id):
		return RoleReplica
	case slices.Contains(p.JoiningNodes, id):
		return RoleJoining
	}
	return RoleNone
}
