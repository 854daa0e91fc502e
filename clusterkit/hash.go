package clusterkit

import (
	"strconv"

	"clusterkit.dev/clusterkit/wire"
)

// KeyHash returns the 64-bit hash of key used for partitioning (see
// wire.KeyHash, which defines it). It does not allocate.
func KeyHash(key string) uint64 { return wire.KeyHash(key) }

// PartitionIndex returns the partition number of key in a cluster of
// partitionCount partitions: KeyHash(key) mod partitionCount. It panics if
// partitionCount is not positive.
func PartitionIndex(key string, partitionCount int) int {
	return wire.PartitionIndex(key, partitionCount)
}

// PartitionID returns the string ID of partition number index, as used in
// hooks and in the HTTP API: "partition-<index>".
func PartitionID(index int) string { return wire.PartitionID(index) }

// ParsePartitionID is the inverse of PartitionID.
func ParsePartitionID(id string) (int, error) {
	const prefix = "partition-"
	if len(id) <= len(prefix) || id[:len(prefix)] != prefix {
		return 0, &FieldError{Field: "partition", Reason: "want partition-<n>, got " + strconv.Quote(id)}
	}
	n, err := strconv.Atoi(id[len(prefix):])
	if err != nil || n < 0 {
		return 0, &FieldError{Field: "partition", Reason: "want partition-<n>, got " + strconv.Quote(id)}
	}
	return n, nil
}
