package wire

import "strconv"

// The key hash is part of the wire contract: clients compute it to route a
// key without asking a server, so it never changes for the life of a cluster.
//
//	KeyHash(key)              = fmix64(FNV-1a-64(key))
//	PartitionIndex(key, P)    = KeyHash(key) mod P
//	PartitionID(index)        = "partition-" + decimal(index)
//
// FNV-1a is simple to reimplement in any language; the 64-bit finaliser of
// MurmurHash3 (fmix64) spreads FNV's weak low bits so that "mod P" is uniform
// even for power-of-two partition counts and keys that differ in one byte.
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// KeyHash returns the 64-bit hash of key used for partitioning. It does not
// allocate.
func KeyHash(key string) uint64 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= fnvPrime64
	}
	// fmix64 from MurmurHash3.
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// PartitionIndex returns the partition number of key in a cluster of
// partitionCount partitions: KeyHash(key) mod partitionCount. It panics if
// partitionCount is not positive.
func PartitionIndex(key string, partitionCount int) int {
	return int(KeyHash(key) % uint64(partitionCount))
}

// PartitionID returns the string ID of partition number index, as used in
// hooks and in the HTTP API: "partition-<index>".
func PartitionID(index int) string {
	return "partition-" + strconv.Itoa(index)
}
