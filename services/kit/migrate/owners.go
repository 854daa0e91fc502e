package migrate

import (
	"slices"

	"clusterkit.dev/clusterkit"
)

// ReadOwner reports whether id is p's primary or one of its replicas.
func ReadOwner(p *clusterkit.Partition, id string) bool {
	return p.PrimaryNode == id || slices.Contains(p.ReplicaNodes, id)
}

// Owner reports whether id owns p in any role: primary, replica or
// joining.
func Owner(p *clusterkit.Partition, id string) bool {
	return ReadOwner(p, id) || slices.Contains(p.JoiningNodes, id)
}

// Role returns id's role for p: primary, replica, joining, or none (also
// for a nil p).
func Role(p *clusterkit.Partition, id string) clusterkit.Role {
	switch {
	case p == nil:
		return clusterkit.RoleNone
	case p.PrimaryNode == id:
		return clusterkit.RolePrimary
	case slices.Contains(p.ReplicaNodes, id):
		return clusterkit.RoleReplica
	case slices.Contains(p.JoiningNodes, id):
		return clusterkit.RoleJoining
	}
	return clusterkit.RoleNone
}
