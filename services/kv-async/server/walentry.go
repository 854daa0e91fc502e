package server

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A log entry is one atomic change of the store: a list of operations,
// each on one partition. Operations carry their outcome, not their
// inputs (the record stored, with its local sequence number; the cursor
// or fence value set), so that applying them to bbolt, during normal
// running or replay, needs no decision.

type opKind byte

// Flags of an opPut.
const (
	// putDeleted marks a tombstone (the value of flagDeleted).
	putDeleted = flagDeleted
	// putPrevKnown says that the replaced record's position follows.
	putPrevKnown = 2
)

const (
	// opPut stores a record (value or tombstone) under a local sequence
	// number, moving the key's index entry.
	opPut opKind = 1
	// opCursor raises a cursor.
	opCursor opKind = 2
	// opFence raises the partition's fence epoch.
	opFence opKind = 3
)

// walOp is one operation of a log entry.
type walOp struct {
	kind      opKind
	partition int
	// opPut: the record with its local sequence number, and when it
	// arrived on this node (Unix ms, the index entry's time). With
	// prevKnown, prev is the local sequence number of the key's record
	// this one replaces (0: none), which spares the applier a lookup.
	rec       stored
	at        int64
	prev      uint64
	prevKnown bool
	// opCursor.
	cursor Cursor
	// opFence.
	epoch uint64
}

// errMalformed reports bytes that do not decode.
var errMalformed = errors.New("malformed encoding")

// appendEntry encodes ops to b.
func appendEntry(b []byte, ops []walOp) []byte {
	b = binary.AppendUvarint(b, uint64(len(ops)))
	for i := range ops {
		op := &ops[i]
		b = append(b, byte(op.kind))
		b = binary.AppendUvarint(b, uint64(op.partition))
		switch op.kind {
		case opPut:
			var flags byte
			if op.rec.Deleted {
				flags |= putDeleted
			}
			if op.prevKnown {
				flags |= putPrevKnown
			}
			b = append(b, flags)
			if op.prevKnown {
				b = binary.AppendUvarint(b, op.prev)
			}
			b = binary.AppendUvarint(b, op.rec.local)
			b = binary.AppendVarint(b, op.at)
			b = binary.AppendUvarint(b, op.rec.Version.Epoch)
			b = binary.AppendUvarint(b, op.rec.Version.Seq)
			b = binary.AppendVarint(b, op.rec.Time)
			b = appendBytes(b, []byte(op.rec.Key))
			b = appendBytes(b, op.rec.Value)
		case opCursor:
			b = appendBytes(b, []byte(op.cursor.Node))
			b = binary.AppendUvarint(b, op.cursor.Inc)
			b = binary.AppendUvarint(b, op.cursor.Seq)
		case opFence:
			b = binary.AppendUvarint(b, op.epoch)
		}
	}
	return b
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// decodeEntry parses what appendEntry wrote. Values are copied out of b.
func decodeEntry(b []byte) ([]walOp, error) {
	d := decoder{b: b}
	n := d.uvarint()
	if d.err != nil || n > uint64(len(b)) {
		return nil, fmt.Errorf("log entry: %w", errMalformed)
	}
	ops := make([]walOp, n)
	for i := range ops {
		op := &ops[i]
		op.kind = opKind(d.byte())
		op.partition = d.int()
		switch op.kind {
		case opPut:
			flags := d.byte()
			if flags&^(putDeleted|putPrevKnown) != 0 {
				d.fail()
			}
			op.rec.Deleted = flags&putDeleted != 0
			if op.prevKnown = flags&putPrevKnown != 0; op.prevKnown {
				op.prev = d.uvarint()
			}
			op.rec.local = d.uvarint()
			op.at = d.varint()
			op.rec.Version.Epoch = d.uvarint()
			op.rec.Version.Seq = d.uvarint()
			op.rec.Time = d.varint()
			op.rec.Key = string(d.bytes())
			if v := d.bytes(); len(v) > 0 || !op.rec.Deleted {
				op.rec.Value = append([]byte{}, v...)
			}
		case opCursor:
			op.cursor.Node = string(d.bytes())
			op.cursor.Inc = d.uvarint()
			op.cursor.Seq = d.uvarint()
		case opFence:
			op.epoch = d.uvarint()
		default:
			return nil, fmt.Errorf("log entry: operation kind %d: %w", op.kind, errMalformed)
		}
		if d.err != nil {
			return nil, fmt.Errorf("log entry: %w", d.err)
		}
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("log entry: %d trailing bytes: %w", len(d.b), errMalformed)
	}
	return ops, nil
}

// decoder reads varints and length-prefixed bytes; the first error
// sticks and makes every later read return zero.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errMalformed
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// int reads a uvarint that must fit an int.
func (d *decoder) int() int {
	v := d.uvarint()
	if v > uint64(maxInt) {
		d.fail()
		return 0
	}
	return int(v)
}

const maxInt = int(^uint(0) >> 1)

// bytes reads a length-prefixed byte string; the result aliases the
// input.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}
