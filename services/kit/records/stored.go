package records

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The stored form of a record, under its key in the partition:
//
//	hi (8 bytes, big endian) | lo (8) | flags (1) | value
const (
	headerLen   = 17
	flagDeleted = 1
)

// ErrCorrupt is returned for a stored record too short to hold a header.
var ErrCorrupt = errors.New("records: corrupt record")

// appendStored appends r's stored form to dst.
func appendStored[V Version[V]](dst []byte, r *Record[V]) []byte {
	hi, lo := r.Version.Pair()
	dst = binary.BigEndian.AppendUint64(dst, hi)
	dst = binary.BigEndian.AppendUint64(dst, lo)
	var flags byte
	if r.Deleted {
		flags |= flagDeleted
	}
	dst = append(dst, flags)
	return append(dst, r.Value...)
}

// storedVersion decodes the version of key's stored record b.
func (s *Store[V]) storedVersion(key string, b []byte) (V, error) {
	if len(b) < headerLen {
		var zero V
		return zero, fmt.Errorf("key %q: %w: %d bytes", key, ErrCorrupt, len(b))
	}
	return s.fromPair(binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])), nil
}

// decode decodes key's stored record b, whose value it keeps: b must not
// be modified afterwards.
func (s *Store[V]) decode(key string, b []byte) (Record[V], error) {
	v, err := s.storedVersion(key, b)
	if err != nil {
		return Record[V]{}, err
	}
	r := Record[V]{Key: key, Version: v, Deleted: b[16]&flagDeleted != 0}
	if !r.Deleted {
		r.Value = b[headerLen:len(b):len(b)]
	}
	return r, nil
}
