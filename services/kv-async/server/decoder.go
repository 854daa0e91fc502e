package server

import (
	"encoding/binary"
	"errors"
)

// The replication batches' binary encoding (batchcodec.go) is made of
// varints and length-prefixed byte strings.

// errMalformed is returned for a batch that does not decode.
var errMalformed = errors.New("malformed encoding")

// appendBytes appends v, prefixed with its length, to b.
func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
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
