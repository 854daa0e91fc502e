package store

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Record is one key's latest write: its value, or a tombstone when the key
// was deleted. Tombstones are kept so that a delete replaces older values
// when partitions are merged.
type Record struct {
	Key     string
	Value   []byte
	Version Version
	Deleted bool
}

// Entry is a Record and the partition it belongs to.
type Entry struct {
	Partition int
	Record
}

// The stored form of a record, under its key in the partition's bucket:
//
//	epoch (8 bytes, big endian) | seq (8) | flags (1) | value
const (
	headerLen   = 17
	flagDeleted = 1
)

var errCorrupt = errors.New("store: corrupt record")

// appendStored appends r's stored form to dst.
func appendStored(dst []byte, r *Record) []byte {
	dst = binary.BigEndian.AppendUint64(dst, r.Version.Epoch)
	dst = binary.BigEndian.AppendUint64(dst, r.Version.Seq)
	var flags byte
	if r.Deleted {
		flags |= flagDeleted
	}
	dst = append(dst, flags)
	return append(dst, r.Value...)
}

// storedVersion decodes the version of a stored record.
func storedVersion(b []byte) (Version, error) {
	if len(b) < headerLen {
		return Version{}, fmt.Errorf("%w: %d bytes", errCorrupt, len(b))
	}
	return Version{Epoch: binary.BigEndian.Uint64(b), Seq: binary.BigEndian.Uint64(b[8:])}, nil
}

// decodeStored decodes a stored record. It copies the value: bbolt's memory
// is valid only inside the transaction.
func decodeStored(key, b []byte) (Record, error) {
	v, err := storedVersion(b)
	if err != nil {
		return Record{}, fmt.Errorf("key %q: %w", key, err)
	}
	r := Record{Key: string(key), Version: v, Deleted: b[16]&flagDeleted != 0}
	if !r.Deleted {
		r.Value = append(make([]byte, 0, len(b)-headerLen), b[headerLen:]...)
	}
	return r, nil
}
