package server

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"clusterkit.dev/services/kv-server-side/internal/store"
)

// Records travel between nodes (partition copies and replication) as a
// sequence of frames, followed by an end frame that carries the number of
// records sent, so that a receiver tells a complete copy from a cut one:
//
//	record: 'R' | uvarint len(key) | key | uvarint epoch | uvarint seq |
//	        flags (1: deleted) | uvarint len(value) | value
//	end:    'E' | uvarint count
const (
	frameRecord = 'R'
	frameEnd    = 'E'

	// maxWireValue bounds a forwarded batch's reply body.
	maxWireValue = 8 << 20
	// MaxVersionNumber bounds a version's epoch and sequence number: a
	// decoder refuses a record whose either number is at or above it, so
	// that no version stored is one that cannot be exceeded. Sequence
	// numbers are wall-clock milliseconds shifted left by 16 bits (see
	// clock), about 2^57 today, and reach 2^62 in the year 4200.
	MaxVersionNumber = 1 << 62
	// readChunk is what a decoder allocates ahead of a field's bytes: a
	// longer field grows as its bytes arrive, never from the length the
	// sender announced.
	readChunk = 64 << 10
)

// errTruncated is returned by a decoder when the input ends before the end
// frame: the sender died or the connection broke mid-copy.
var errTruncated = errors.New("record stream ended without its end frame")

// appendRecordFrame appends r's frame to dst.
func appendRecordFrame(dst []byte, r *store.Record) []byte {
	dst = append(dst, frameRecord)
	dst = binary.AppendUvarint(dst, uint64(len(r.Key)))
	dst = append(dst, r.Key...)
	dst = binary.AppendUvarint(dst, r.Version.Epoch)
	dst = binary.AppendUvarint(dst, r.Version.Seq)
	var flags byte
	if r.Deleted {
		flags = 1
	}
	dst = append(dst, flags)
	dst = binary.AppendUvarint(dst, uint64(len(r.Value)))
	return append(dst, r.Value...)
}

// appendEndFrame appends the end frame of a sequence of count records.
func appendEndFrame(dst []byte, count int) []byte {
	return binary.AppendUvarint(append(dst, frameEnd), uint64(count))
}

// frameReader decodes a sequence of frames.
type frameReader struct {
	r     *bufio.Reader
	count int
}

func newFrameReader(r io.Reader) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, 4<<10)}
}

// next returns the next record, or io.EOF after a valid end frame. Any
// other error means the sequence is incomplete or malformed: a record's key
// must be 1 to MaxKeySize bytes, its value at most MaxValueSize, and its
// epoch and sequence number below MaxVersionNumber, as for any write the
// API accepts.
func (f *frameReader) next() (store.Record, error) {
	kind, err := f.r.ReadByte()
	if err != nil {
		return store.Record{}, truncated(err)
	}
	switch kind {
	case frameEnd:
		n, err := binary.ReadUvarint(f.r)
		if err != nil {
			return store.Record{}, truncated(err)
		}
		if n != uint64(f.count) {
			return store.Record{}, fmt.Errorf("record stream: end frame counts %d records, received %d", n, f.count)
		}
		return store.Record{}, io.EOF
	case frameRecord:
	default:
		return store.Record{}, fmt.Errorf("record stream: unknown frame %q", kind)
	}
	var r store.Record
	key, err := f.bytes(MaxKeySize)
	if err != nil {
		return r, err
	}
	if len(key) == 0 {
		return r, errors.New("record stream: empty key")
	}
	r.Key = string(key)
	if r.Version.Epoch, err = binary.ReadUvarint(f.r); err != nil {
		return r, truncated(err)
	}
	if r.Version.Seq, err = binary.ReadUvarint(f.r); err != nil {
		return r, truncated(err)
	}
	if r.Version.Epoch >= MaxVersionNumber || r.Version.Seq >= MaxVersionNumber {
		return r, fmt.Errorf("record stream: version %v of %q: epoch and seq must be below 2^62", r.Version, r.Key)
	}
	flags, err := f.r.ReadByte()
	if err != nil {
		return r, truncated(err)
	}
	r.Deleted = flags&1 != 0
	if r.Value, err = f.bytes(MaxValueSize); err != nil {
		return r, err
	}
	if r.Deleted {
		r.Value = nil
	}
	f.count++
	return r, nil
}

// bytes reads a length-prefixed byte string of at most limit bytes.
func (f *frameReader) bytes(limit uint64) ([]byte, error) {
	n, err := binary.ReadUvarint(f.r)
	if err != nil {
		return nil, truncated(err)
	}
	if n > limit {
		return nil, fmt.Errorf("record stream: field of %d bytes exceeds %d", n, limit)
	}
	b, err := readN(f.r, n)
	if err != nil {
		return nil, truncated(err)
	}
	return b, nil
}

// readN reads n bytes from r. It allocates at most readChunk ahead of the
// bytes that arrived, so a sender that announces a long field and sends
// little costs little.
func readN(r io.Reader, n uint64) ([]byte, error) {
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

func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errTruncated
	}
	return fmt.Errorf("record stream: %w", err)
}
