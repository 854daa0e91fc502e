// Package stream is the record stream nodes send each other: a partition
// copied to a new owner (Send, Pull), and any other batch of records a
// service moves between nodes (AppendRecord, AppendEnd, Reader).
//
// A stream is a sequence of frames, followed by an end frame that carries
// the number of records sent, so that a receiver tells a complete stream
// from a cut one:
//
//	record: 'R' | uvarint len(key) | key | uvarint hi | uvarint lo |
//	        flags (1: deleted) | uvarint len(value) | value
//	end:    'E' | uvarint count
//
// where hi and lo are the record's version numbers (records.Version.Pair).
package stream

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"clusterkit.dev/services/kit/records"
)

// Frame kinds. A service that frames its own items the same way (a kind
// byte, its fields, then an end frame) may use other kinds.
const (
	FrameRecord = 'R'
	FrameEnd    = 'E'
)

// readChunk is what a decoder allocates ahead of a field's bytes: a longer
// field grows as its bytes arrive, never from the length the sender
// announced.
const readChunk = 64 << 10

// ErrTruncated is returned by a Reader when the input ends before the end
// frame: the sender died or the connection broke mid-stream.
var ErrTruncated = errors.New("record stream ended without its end frame")

// Limits bound what a Reader accepts; a record beyond them fails the
// stream. The zero Limits take the defaults.
type Limits struct {
	// MaxKey bounds a key's length. Default 64 KiB.
	MaxKey int
	// MaxValue bounds a value's length. Default 8 MiB.
	MaxValue int
	// MaxVersion, if not zero, bounds both numbers of a version: a record
	// whose either number is at or above it is refused, so that no version
	// stored is one that cannot be exceeded.
	MaxVersion uint64
}

func (l Limits) withDefaults() Limits {
	if l.MaxKey <= 0 {
		l.MaxKey = 64 << 10
	}
	if l.MaxValue <= 0 {
		l.MaxValue = 8 << 20
	}
	return l
}

// AppendRecord appends r's frame to dst.
func AppendRecord[V records.Version[V]](dst []byte, r *records.Record[V]) []byte {
	dst = append(dst, FrameRecord)
	dst = binary.AppendUvarint(dst, uint64(len(r.Key)))
	dst = append(dst, r.Key...)
	hi, lo := r.Version.Pair()
	dst = binary.AppendUvarint(dst, hi)
	dst = binary.AppendUvarint(dst, lo)
	var flags byte
	if r.Deleted {
		flags = 1
	}
	dst = append(dst, flags)
	dst = binary.AppendUvarint(dst, uint64(len(r.Value)))
	return append(dst, r.Value...)
}

// AppendEnd appends the end frame of a sequence of count frames.
func AppendEnd(dst []byte, count int) []byte {
	return binary.AppendUvarint(append(dst, FrameEnd), uint64(count))
}

// Reader decodes a record stream.
type Reader[V records.Version[V]] struct {
	r       *bufio.Reader
	version func(hi, lo uint64) V
	limits  Limits
	count   int
}

// NewReader returns a Reader of r; version makes a V of its two numbers.
func NewReader[V records.Version[V]](r io.Reader, version func(hi, lo uint64) V, limits Limits) *Reader[V] {
	return &Reader[V]{r: bufio.NewReaderSize(r, 4<<10), version: version, limits: limits.withDefaults()}
}

// Next returns the next record, or io.EOF after a valid end frame. Any
// other error means the stream is incomplete (ErrTruncated) or malformed:
// a record's key must be 1 to Limits.MaxKey bytes, its value at most
// Limits.MaxValue, its version numbers below Limits.MaxVersion, and the
// end frame must count the records received.
func (f *Reader[V]) Next() (records.Record[V], error) {
	kind, err := f.r.ReadByte()
	if err != nil {
		return records.Record[V]{}, Truncated(err)
	}
	switch kind {
	case FrameEnd:
		n, err := binary.ReadUvarint(f.r)
		if err != nil {
			return records.Record[V]{}, Truncated(err)
		}
		if n != uint64(f.count) {
			return records.Record[V]{}, fmt.Errorf("record stream: end frame counts %d records, received %d", n, f.count)
		}
		return records.Record[V]{}, io.EOF
	case FrameRecord:
	default:
		return records.Record[V]{}, fmt.Errorf("record stream: unknown frame %q", kind)
	}
	var r records.Record[V]
	key, err := ReadField(f.r, f.limits.MaxKey)
	if err != nil {
		return r, err
	}
	if len(key) == 0 {
		return r, errors.New("record stream: empty key")
	}
	r.Key = string(key)
	var hi, lo uint64
	if hi, err = binary.ReadUvarint(f.r); err != nil {
		return r, Truncated(err)
	}
	if lo, err = binary.ReadUvarint(f.r); err != nil {
		return r, Truncated(err)
	}
	if m := f.limits.MaxVersion; m != 0 && (hi >= m || lo >= m) {
		return r, fmt.Errorf("record stream: version %d.%d of %q: both numbers must be below %d", hi, lo, r.Key, m)
	}
	r.Version = f.version(hi, lo)
	flags, err := f.r.ReadByte()
	if err != nil {
		return r, Truncated(err)
	}
	r.Deleted = flags&1 != 0
	if r.Value, err = ReadField(f.r, f.limits.MaxValue); err != nil {
		return r, err
	}
	if r.Deleted {
		r.Value = nil
	}
	f.count++
	return r, nil
}

// ReadField reads a field of a frame: a uvarint length of at most limit,
// then that many bytes. The input ending early is ErrTruncated.
func ReadField(r *bufio.Reader, limit int) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, Truncated(err)
	}
	if n > uint64(limit) {
		return nil, fmt.Errorf("record stream: field of %d bytes exceeds %d", n, limit)
	}
	b, err := ReadN(r, n)
	if err != nil {
		return nil, Truncated(err)
	}
	return b, nil
}

// ReadN reads n bytes from r. It allocates at most 64 KiB ahead of the
// bytes that arrived, so a sender that announces a long field and sends
// little costs little.
func ReadN(r io.Reader, n uint64) ([]byte, error) {
	if n <= readChunk {
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		return b, err
	}
	var buf bytes.Buffer
	buf.Grow(readChunk)
	if _, err := io.CopyN(&buf, r, int64(n)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Truncated returns ErrTruncated for an input that ended (io.EOF,
// io.ErrUnexpectedEOF), and err wrapped otherwise.
func Truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrTruncated
	}
	return fmt.Errorf("record stream: %w", err)
}

// ReadAll decodes a whole stream from r: every record up to a valid end
// frame, or those before the error that ended it.
func ReadAll[V records.Version[V]](r io.Reader, version func(hi, lo uint64) V, limits Limits) ([]records.Record[V], error) {
	fr := NewReader(r, version, limits)
	var out []records.Record[V]
	for {
		rec, err := fr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, rec)
	}
}
