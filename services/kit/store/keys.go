package store

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Key prefixes: metadata sorts before every partition.
const (
	metaPrefix      = 'm'
	partitionPrefix = 'p'
	// partitionKeyLen is the length of a partition's key prefix.
	partitionKeyLen = 5
)

// checkPartition reports an error for a partition number the layout
// cannot hold.
func checkPartition(p int) error {
	if p < 0 || p > math.MaxUint32 {
		return fmt.Errorf("store: partition %d out of range [0, %d]", p, uint32(math.MaxUint32))
	}
	return nil
}

// appendPartition appends partition p's key prefix to dst.
func appendPartition(dst []byte, p int) []byte {
	return binary.BigEndian.AppendUint32(append(dst, partitionPrefix), uint32(p))
}

// partitionKey returns the stored key of key in partition p.
func partitionKey(p int, key []byte) []byte {
	return append(appendPartition(make([]byte, 0, partitionKeyLen+len(key)), p), key...)
}

// partitionBounds returns the key range [lower, upper) of partition p.
func partitionBounds(p int) (lower, upper []byte) {
	lower = appendPartition(nil, p)
	if uint64(p) == math.MaxUint32 {
		return lower, []byte{partitionPrefix + 1}
	}
	return lower, appendPartition(nil, p+1)
}

// metaKey returns the stored key of the metadata entry name.
func metaKey(name string) []byte {
	return append([]byte{metaPrefix}, name...)
}

// splitPartitionKey returns the partition and key of a stored partition
// key; ok is false for any other key.
func splitPartitionKey(k []byte) (p int, key []byte, ok bool) {
	if len(k) < partitionKeyLen || k[0] != partitionPrefix {
		return 0, nil, false
	}
	return int(binary.BigEndian.Uint32(k[1:])), k[partitionKeyLen:], true
}
