// Package batch is the binary format of POST /kv/batch, which carries
// many writes of one client to one primary in one HTTP request: under
// load, a client's concurrent writes share a round trip, and the primary
// logs them as one entry.
//
//	request:  format | count | op*
//	op:       'S' | key | value        (set)
//	          'D' | key                (delete)
//	answer:   format | count | result*
//	result:   code | (code 200: epoch | seq | existed) | (other codes: message)
//
// Integers are uvarints; keys, values and messages are uvarint
// length-prefixed bytes. A result's code is the HTTP status the op would
// have had as a single request (200, 400, 413, 421, 503, 500).
package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
)

// Format is the version of the encoding; a decoder refuses others.
const Format = 1

// ContentType marks batches and their answers.
const ContentType = "application/x-kvasync-ops"

// Op kinds.
const (
	Set    byte = 'S'
	Delete byte = 'D'
)

// Limits of one batch, above the API's per-key and per-value limits.
const (
	// MaxOps bounds the ops of one batch.
	MaxOps = 1024
	// MaxKey and MaxValue bound what a decoder accepts; the server
	// answers an op over the API's limits with 413 itself.
	MaxKey   = 64 << 10
	MaxValue = 8 << 20
)

// Op is one write of a batch. Decoded ops share the request's buffer.
type Op struct {
	Kind  byte
	Key   []byte
	Value []byte // Set only
}

// Result is the outcome of one op.
type Result struct {
	Code int // HTTP status
	// Epoch and Seq are the version written (Code 200, and for a delete
	// only when Existed).
	Epoch, Seq uint64
	// Existed: a delete removed a value (a set always reports true).
	Existed bool
	// Message says why the op failed (Code other than 200).
	Message string
}

// ErrMalformed wraps every decoding error.
var ErrMalformed = errors.New("malformed batch")

// AppendRequest encodes ops to b.
func AppendRequest(b []byte, ops []Op) []byte {
	b = binary.AppendUvarint(b, Format)
	b = binary.AppendUvarint(b, uint64(len(ops)))
	for i := range ops {
		op := &ops[i]
		b = append(b, op.Kind)
		b = appendBytes(b, op.Key)
		if op.Kind == Set {
			b = appendBytes(b, op.Value)
		}
	}
	return b
}

// DecodeRequest decodes a batch; the ops' keys and values share b.
func DecodeRequest(b []byte) ([]Op, error) {
	d := decoder{b: b}
	d.format()
	n := d.count(MaxOps)
	if d.err != nil {
		return nil, d.err
	}
	ops := make([]Op, n)
	for i := range ops {
		op := &ops[i]
		op.Kind = d.byte()
		switch op.Kind {
		case Set:
			op.Key = d.bytes(MaxKey)
			op.Value = d.bytes(MaxValue)
		case Delete:
			op.Key = d.bytes(MaxKey)
		default:
			d.fail("op %d: unknown kind %q", i, op.Kind)
		}
		if d.err != nil {
			return nil, d.err
		}
	}
	if d.err == nil && len(d.b) > 0 {
		d.fail("%d bytes after the last op", len(d.b))
	}
	return ops, d.err
}

// AppendAnswer encodes results to b.
func AppendAnswer(b []byte, results []Result) []byte {
	b = binary.AppendUvarint(b, Format)
	b = binary.AppendUvarint(b, uint64(len(results)))
	for i := range results {
		r := &results[i]
		b = binary.AppendUvarint(b, uint64(r.Code))
		if r.Code != http.StatusOK {
			b = appendBytes(b, []byte(r.Message))
			continue
		}
		b = binary.AppendUvarint(b, r.Epoch)
		b = binary.AppendUvarint(b, r.Seq)
		existed := byte(0)
		if r.Existed {
			existed = 1
		}
		b = append(b, existed)
	}
	return b
}

// DecodeAnswer decodes the answer to a batch of n ops.
func DecodeAnswer(b []byte, n int) ([]Result, error) {
	d := decoder{b: b}
	d.format()
	if got := d.count(MaxOps); d.err == nil && got != n {
		d.fail("%d results for %d ops", got, n)
	}
	if d.err != nil {
		return nil, d.err
	}
	results := make([]Result, n)
	for i := range results {
		r := &results[i]
		code := d.uvarint()
		if d.err == nil && (code < 100 || code > 599) {
			d.fail("result %d: status %d", i, code)
		}
		r.Code = int(code)
		if r.Code != http.StatusOK {
			r.Message = string(d.bytes(MaxKey))
		} else {
			r.Epoch, r.Seq = d.uvarint(), d.uvarint()
			switch e := d.byte(); e {
			case 0, 1:
				r.Existed = e == 1
			default:
				d.fail("result %d: existed flag %d", i, e)
			}
		}
		if d.err != nil {
			return nil, d.err
		}
	}
	if d.err == nil && len(d.b) > 0 {
		d.fail("%d bytes after the last result", len(d.b))
	}
	return results, d.err
}

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decoder reads b; the first error sticks and every later read returns
// zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("truncated or overlong integer")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes(limit int) []byte {
	n := d.uvarint()
	switch {
	case d.err != nil:
		return nil
	case n > uint64(limit):
		d.fail("length %d over the limit of %d", n, limit)
		return nil
	case n > uint64(len(d.b)):
		d.fail("length %d, %d bytes left", n, len(d.b))
		return nil
	}
	s := d.b[:n:n]
	d.b = d.b[n:]
	return s
}

func (d *decoder) format() {
	if f := d.uvarint(); d.err == nil && f != Format {
		d.fail("format %d, want %d", f, Format)
	}
}

func (d *decoder) count(limit int) int {
	n := d.uvarint()
	switch {
	case d.err != nil:
		return 0
	case n == 0:
		d.fail("no ops")
		return 0
	case n > uint64(limit):
		d.fail("%d ops, the limit is %d", n, limit)
		return 0
	}
	return int(n)
}
