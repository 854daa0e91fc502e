package placement

import "math"

// MaxWeight is the largest Node.Weight that Compute accepts.
const MaxWeight = math.MaxInt32

// Node is a node that may own partitions.
type Node struct {
	// ID uniquely identifies the node. It must not be empty.
	ID string
	// Zone is the failure domain (rack, availability zone). Empty means
	// "no zone": the node shares a zone with no other node, so zone
	// spreading treats it as a zone of its own.
	Zone string
	// Weight scales the node's share of slots and primaries. Zero means 1;
	// it must not be negative or exceed MaxWeight.
	Weight int
}

// Partition is one partition's owners. Owners[0] is the primary; the rest
// are replicas. Owners are distinct.
type Partition struct {
	Owners []string
}

// Primary returns the partition's primary, or "" if it has no owners.
func (p Partition) Primary() string {
	if len(p.Owners) == 0 {
		return ""
	}
	return p.Owners[0]
}

// Table is the assignment of every partition, indexed by partition number.
type Table []Partition

// Config holds the cluster-wide parameters of a table.
type Config struct {
	// Partitions is the number of partitions (> 0, at most math.MaxInt32).
	Partitions int
	// ReplicationFactor is the number of owners per partition (> 0). When
	// fewer nodes are eligible, every partition gets min(RF, nodes) owners.
	ReplicationFactor int
}
