package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Version orders the writes of one key across the cluster. Epoch is the
// partition's epoch when the primary accepted the write (it increases
// whenever the primary changes) and Seq the primary's local sequence
// number, so a write accepted by a newer primary always wins, and one
// primary's writes are ordered as it accepted them.
type Version struct {
	Epoch uint64 `json:"epoch"`
	Seq   uint64 `json:"seq"`
}

// Newer reports whether v orders after w.
func (v Version) Newer(w Version) bool {
	if v.Epoch != w.Epoch {
		return v.Epoch > w.Epoch
	}
	return v.Seq > w.Seq
}

// String formats v as "epoch.seq".
func (v Version) String() string {
	return strconv.FormatUint(v.Epoch, 10) + "." + strconv.FormatUint(v.Seq, 10)
}

// Append appends v formatted as String does to b.
func (v Version) Append(b []byte) []byte {
	b = strconv.AppendUint(b, v.Epoch, 10)
	b = append(b, '.')
	return strconv.AppendUint(b, v.Seq, 10)
}

// ParseVersion parses "epoch.seq".
func ParseVersion(s string) (Version, error) {
	e, q, ok := strings.Cut(s, ".")
	if !ok {
		return Version{}, fmt.Errorf("version %q: want epoch.seq", s)
	}
	ep, err1 := strconv.ParseUint(e, 10, 64)
	sq, err2 := strconv.ParseUint(q, 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return Version{}, fmt.Errorf("version %q: %w", s, err)
	}
	return Version{Epoch: ep, Seq: sq}, nil
}

// Record is one key's latest write: a value or, with Deleted, a tombstone.
// Tombstones are kept so that deletes replicate and migrate like writes.
type Record struct {
	Key     string
	Value   []byte
	Version Version
	Deleted bool
	// Time is when the primary accepted the write, in Unix milliseconds.
	Time int64
}

// stored is a record as kept under its key in the partition, with the
// local sequence number of its index entry.
type stored struct {
	Record
	local uint64
}

const flagDeleted = 1

// encode lays out a stored record (its key is in the stored key):
// flags | uvarint epoch | uvarint seq | varint time | uvarint local | value.
func (s *stored) encode() []byte {
	b := make([]byte, 0, 1+4*binary.MaxVarintLen64+len(s.Value))
	var flags byte
	if s.Deleted {
		flags |= flagDeleted
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, s.Version.Epoch)
	b = binary.AppendUvarint(b, s.Version.Seq)
	b = binary.AppendVarint(b, s.Time)
	b = binary.AppendUvarint(b, s.local)
	return append(b, s.Value...)
}

// ErrCorrupt is returned for stored data the store cannot decode.
var ErrCorrupt = errors.New("kv-async: store: corrupt data")

// header is the fixed part of a stored record.
type header struct {
	version Version
	deleted bool
	time    int64
	local   uint64
	// valueAt is the offset of the value in the encoded record.
	valueAt int
}

// decodeHeader parses the fixed part of what encode wrote.
func decodeHeader(b []byte) (header, error) {
	var h header
	if len(b) < 1 {
		return h, ErrCorrupt
	}
	h.deleted = b[0]&flagDeleted != 0
	off, bad := 1, false
	uvarint := func() uint64 {
		if bad {
			return 0
		}
		v, n := binary.Uvarint(b[off:])
		if n <= 0 {
			bad = true
			return 0
		}
		off += n
		return v
	}
	h.version.Epoch = uvarint()
	h.version.Seq = uvarint()
	if !bad {
		t, n := binary.Varint(b[off:])
		if n <= 0 {
			return h, ErrCorrupt
		}
		h.time = t
		off += n
	}
	h.local = uvarint()
	if bad {
		return h, ErrCorrupt
	}
	h.valueAt = off
	return h, nil
}

// decodeStored parses what encode wrote. The value is copied out of b.
func decodeStored(key string, b []byte) (stored, error) {
	h, err := decodeHeader(b)
	if err != nil {
		return stored{}, fmt.Errorf("key %q: %w", key, err)
	}
	return stored{
		Record: Record{Key: key, Value: append([]byte(nil), b[h.valueAt:]...), Version: h.version, Deleted: h.deleted, Time: h.time},
		local:  h.local,
	}, nil
}
