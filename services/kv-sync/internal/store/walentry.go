package store

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A log entry is either a list of records to store, each merged by version
// as a write is, or the drop of a partition:
//
//	writes:  'W' | uvarint count | record*
//	record:  uvarint partition | uvarint len(key) | key | uvarint counter |
//	         uvarint writer | flags (1: deleted) | uvarint len(value) | value
//	drop:    'D' | uvarint partition
//
// Replaying entries in order gives the store the state they describe
// whatever part of them bbolt already holds: merging a record is
// idempotent, and a drop deletes whatever came before it.
const (
	entryWrites byte = 'W'
	entryDrop   byte = 'D'
)

// maxEntryBytes bounds the records of one log entry (about): a larger
// write is split into several entries.
const maxEntryBytes = 16 << 20

var errMalformedEntry = errors.New("store: malformed log entry")

// appendWrites appends the writes entry of entries to dst.
func appendWrites(dst []byte, entries []*Entry) []byte {
	dst = append(dst, entryWrites)
	dst = binary.AppendUvarint(dst, uint64(len(entries)))
	for _, e := range entries {
		dst = binary.AppendUvarint(dst, uint64(e.Partition))
		dst = binary.AppendUvarint(dst, uint64(len(e.Key)))
		dst = append(dst, e.Key...)
		dst = binary.AppendUvarint(dst, e.Version.Counter)
		dst = binary.AppendUvarint(dst, e.Version.Writer)
		var flags byte
		if e.Deleted {
			flags = flagDeleted
		}
		dst = append(dst, flags)
		dst = binary.AppendUvarint(dst, uint64(len(e.Value)))
		dst = append(dst, e.Value...)
	}
	return dst
}

// entrySize is about the bytes e takes in a writes entry.
func entrySize(e *Entry) int { return len(e.Key) + len(e.Value) + 40 }

// appendDrop appends the drop entry of partition p to dst.
func appendDrop(dst []byte, p int) []byte {
	return binary.AppendUvarint(append(dst, entryDrop), uint64(p))
}

// decodeEntry calls write with each record of a writes entry, or drop with
// the partition of a drop entry. The records' keys and values are copies.
func decodeEntry(b []byte, write func(Entry) error, drop func(p int) error) error {
	if len(b) == 0 {
		return errMalformedEntry
	}
	d := decoder{b: b[1:]}
	switch b[0] {
	case entryDrop:
		p := d.uvarint()
		if d.err != nil || len(d.b) != 0 {
			return errMalformedEntry
		}
		return drop(int(p))
	case entryWrites:
	default:
		return fmt.Errorf("%w: kind %q", errMalformedEntry, b[0])
	}
	n := d.uvarint()
	for i := uint64(0); i < n && d.err == nil; i++ {
		var e Entry
		e.Partition = int(d.uvarint())
		e.Key = string(d.bytes())
		e.Version.Counter = d.uvarint()
		e.Version.Writer = d.uvarint()
		e.Deleted = d.byte()&flagDeleted != 0
		if v := d.bytes(); !e.Deleted {
			e.Value = append(make([]byte, 0, len(v)), v...)
		}
		if d.err != nil {
			break
		}
		if err := write(e); err != nil {
			return err
		}
	}
	if d.err != nil || len(d.b) != 0 {
		return errMalformedEntry
	}
	return nil
}

// decoder reads the fields of an entry; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errMalformedEntry
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.err = errMalformedEntry
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = errMalformedEntry
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}
