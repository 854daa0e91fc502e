// Package batch is the binary format of POST /kv/batch, which carries many
// replica requests of a client to one node in one HTTP request: the
// client's concurrent operations share round trips, and the node commits a
// batch's writes together.
//
//	request:  op*  end
//	op:       'G' | uvarint len(key) | key                               (read)
//	          'W' | uvarint len(key) | key | uvarint counter | uvarint writer |
//	              flags (1: deleted) | uvarint len(value) | value        (write)
//	end:      'E' | uvarint count
//
//	answer:   one result per op, in order, then 'E' | uvarint count
//	result:   status (1 byte) and, for StatusFound, uvarint counter |
//	          uvarint writer | flags | uvarint len(value) | value
package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Op kinds.
const (
	OpRead  byte = 'G'
	OpWrite byte = 'W'
	opEnd   byte = 'E'
)

// Result statuses.
const (
	// StatusOK: a write was stored, or the node holds a newer version.
	StatusOK byte = 0
	// StatusFound: a read found a record (a tombstone if Deleted).
	StatusFound byte = 1
	// StatusAbsent: a read found no record.
	StatusAbsent byte = 2
	// StatusNotOwner: the node does not own the key's partition in the
	// role the op needs (any owner for a write, a ready one for a read).
	StatusNotOwner byte = 3
	// StatusUnavailable: the node cannot answer now (it is still copying
	// the partition, or has no map); ask another owner.
	StatusUnavailable byte = 4
	// StatusInvalid: the op is malformed (an empty key, a zero version).
	StatusInvalid byte = 5
)

// Limits a decoder enforces, above the API's.
const (
	MaxKey   = 64 << 10
	MaxValue = 8 << 20
	// MaxOps bounds the ops of one request.
	MaxOps = 4096
	// MaxRequestBytes bounds the keys and values a sender puts in one
	// request, but for a single op larger than that.
	MaxRequestBytes = 16 << 20
)

// Op is one replica request.
type Op struct {
	Kind            byte
	Key             string
	Counter, Writer uint64 // writes
	Deleted         bool   // writes
	Value           []byte // writes
}

// Result is the answer to one Op.
type Result struct {
	Status          byte
	Counter, Writer uint64 // StatusFound
	Deleted         bool   // StatusFound
	Value           []byte // StatusFound
}

// ErrTruncated is returned when the input ends before its end frame.
var ErrTruncated = errors.New("batch: input ended before its end frame")

// AppendOp appends op's frame to dst.
func AppendOp(dst []byte, op *Op) []byte {
	dst = append(dst, op.Kind)
	dst = binary.AppendUvarint(dst, uint64(len(op.Key)))
	dst = append(dst, op.Key...)
	if op.Kind != OpWrite {
		return dst
	}
	return appendVersioned(dst, op.Counter, op.Writer, op.Deleted, op.Value)
}

// AppendResult appends res's frame to dst.
func AppendResult(dst []byte, res *Result) []byte {
	dst = append(dst, res.Status)
	if res.Status != StatusFound {
		return dst
	}
	return appendVersioned(dst, res.Counter, res.Writer, res.Deleted, res.Value)
}

// AppendEnd appends the end frame of count ops or results.
func AppendEnd(dst []byte, count int) []byte {
	return binary.AppendUvarint(append(dst, opEnd), uint64(count))
}

func appendVersioned(dst []byte, counter, writer uint64, deleted bool, value []byte) []byte {
	dst = binary.AppendUvarint(dst, counter)
	dst = binary.AppendUvarint(dst, writer)
	var flags byte
	if deleted {
		flags = 1
	}
	dst = append(dst, flags)
	dst = binary.AppendUvarint(dst, uint64(len(value)))
	return append(dst, value...)
}

// ReadOps decodes a request. The ops' keys and values are copies: b may be
// reused.
func ReadOps(b []byte) ([]Op, error) {
	br := bytes.NewReader(b)
	var ops []Op
	for {
		kind, err := br.ReadByte()
		if err != nil {
			return nil, truncated(err)
		}
		if kind == opEnd {
			return ops, readEnd(br, len(ops))
		}
		if kind != OpRead && kind != OpWrite {
			return nil, fmt.Errorf("batch: unknown op %q", kind)
		}
		if len(ops) == MaxOps {
			return nil, fmt.Errorf("batch: more than %d ops", MaxOps)
		}
		op := Op{Kind: kind}
		key, err := readBytes(br, MaxKey)
		if err != nil {
			return nil, err
		}
		op.Key = string(key)
		if kind == OpWrite {
			if op.Counter, op.Writer, op.Deleted, op.Value, err = readVersioned(br); err != nil {
				return nil, err
			}
		}
		ops = append(ops, op)
	}
}

// ReadResults decodes the answer to a request of n ops.
func ReadResults(b []byte, n int) ([]Result, error) {
	br := bytes.NewReader(b)
	results := make([]Result, n)
	for i := range results {
		status, err := br.ReadByte()
		if err != nil {
			return nil, truncated(err)
		}
		res := Result{Status: status}
		switch status {
		case StatusFound:
			if res.Counter, res.Writer, res.Deleted, res.Value, err = readVersioned(br); err != nil {
				return nil, err
			}
		case StatusOK, StatusAbsent, StatusNotOwner, StatusUnavailable, StatusInvalid:
		default:
			return nil, fmt.Errorf("batch: unknown status %d", status)
		}
		results[i] = res
	}
	kind, err := br.ReadByte()
	if err != nil {
		return nil, truncated(err)
	}
	if kind != opEnd {
		return nil, fmt.Errorf("batch: %d results, then %q instead of the end frame", n, kind)
	}
	return results, readEnd(br, n)
}

func readEnd(br *bytes.Reader, got int) error {
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return truncated(err)
	}
	if n != uint64(got) {
		return fmt.Errorf("batch: end frame counts %d, received %d", n, got)
	}
	return nil
}

func readVersioned(br *bytes.Reader) (counter, writer uint64, deleted bool, value []byte, err error) {
	if counter, err = binary.ReadUvarint(br); err != nil {
		return 0, 0, false, nil, truncated(err)
	}
	if writer, err = binary.ReadUvarint(br); err != nil {
		return 0, 0, false, nil, truncated(err)
	}
	flags, err := br.ReadByte()
	if err != nil {
		return 0, 0, false, nil, truncated(err)
	}
	if value, err = readBytes(br, MaxValue); err != nil {
		return 0, 0, false, nil, err
	}
	return counter, writer, flags&1 != 0, value, nil
}

func readBytes(br *bytes.Reader, limit uint64) ([]byte, error) {
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, truncated(err)
	}
	if n > limit || n > uint64(br.Len()) {
		if n > limit {
			return nil, fmt.Errorf("batch: field of %d bytes exceeds %d", n, limit)
		}
		return nil, ErrTruncated
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(br, b); err != nil {
		return nil, truncated(err)
	}
	return b, nil
}

func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrTruncated
	}
	return fmt.Errorf("batch: %w", err)
}
