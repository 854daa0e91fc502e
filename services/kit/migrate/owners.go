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
