package store

import "encoding/binary"

// The key prefixes inside a partition.
const (
	prefixCursor = 'c'
	prefixData   = 'd'
	// Earlier stores kept the index in the partition, under 'h' (its
	// head) and 'i' (its entries), both after the fence; Open deletes
	// them.
	prefixOldIndex = 'h'
)

// keyFence is the stored key of a partition's fence.
var keyFence = []byte{'f'}

// The store's metadata entries.
const (
	metaIncarnation = "kvasync.incarnation"
	metaLocal       = "kvasync.local"
)

// dataKey is the stored key of key's record.
func dataKey(key string) []byte {
	return append(append(make([]byte, 0, 1+len(key)), prefixData), key...)
}

// cursorKey is the stored key of the cursor of (node, inc).
func cursorKey(node string, inc uint64) []byte {
	k := make([]byte, 0, 1+len(node)+9)
	k = append(append(append(k, prefixCursor), node...), 0)
	return binary.BigEndian.AppendUint64(k, inc)
}

// parseCursor parses a cursor's stored key and value.
func parseCursor(k, v []byte) (Cursor, bool) {
	if len(k) < 10 || k[0] != prefixCursor || k[len(k)-9] != 0 || len(v) != 8 {
		return Cursor{}, false
	}
	return Cursor{Node: string(k[1 : len(k)-9]), Inc: binary.BigEndian.Uint64(k[len(k)-8:]), Seq: binary.BigEndian.Uint64(v)}, true
}

// u64 encodes v in 8 bytes, big endian.
func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// parseU64 decodes what u64 encoded.
func parseU64(b []byte) (uint64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(b), true
}
