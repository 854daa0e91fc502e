package server

import (
	"bufio"
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

	// maxWireKey and maxWireValue bound what a decoder allocates for one
	// frame; they are well above the API limits.
	maxWireKey   = 64 << 10
	maxWireValue = 8 << 20
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
// other error means the sequence is incomplete or malformed.
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
	key, err := f.bytes(maxWireKey)
	if err != nil {
		return r, err
	}
	r.Key = string(key)
	if r.Version.Epoch, err = binary.ReadUvarint(f.r); err != nil {
		return r, truncated(err)
	}
	if r.Version.Seq, err = binary.ReadUvarint(f.r); err != nil {
		return r, truncated(err)
	}
	flags, err := f.r.ReadByte()
	if err != nil {
		return r, truncated(err)
	}
	r.Deleted = flags&1 != 0
	if r.Value, err = f.bytes(maxWireValue); err != nil {
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
	b := make([]byte, n)
	if _, err := io.ReadFull(f.r, b); err != nil {
		return nil, truncated(err)
	}
	return b, nil
}

func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errTruncated
	}
	return fmt.Errorf("record stream: %w", err)
}
