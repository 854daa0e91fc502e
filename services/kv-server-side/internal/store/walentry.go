package store

import (
	"encoding/binary"
	"fmt"
)

// A log entry holds the records one Write or Merge stored:
//
//	entry:  uvarint count | record*
//	record: uvarint partition | uvarint len(key) | key
//	        | uvarint len(stored) | stored form (see appendStored)

// appendEntry appends the log entry of entries to dst.
func appendEntry(dst []byte, entries []Entry) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(entries)))
	for i := range entries {
		e := &entries[i]
		dst = binary.AppendUvarint(dst, uint64(e.Partition))
		dst = binary.AppendUvarint(dst, uint64(len(e.Key)))
		dst = append(dst, e.Key...)
		dst = binary.AppendUvarint(dst, uint64(headerLen+len(e.Value)))
		dst = appendStored(dst, &e.Record)
	}
	return dst
}

// decodeEntry decodes a log entry. Values are copied out of b.
func decodeEntry(b []byte) ([]Entry, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return nil, fmt.Errorf("%w: log entry count", errCorrupt)
	}
	b = b[n:]
	entries := make([]Entry, 0, count)
	for range count {
		p, n := binary.Uvarint(b)
		if n <= 0 || p > 1<<31 {
			return nil, fmt.Errorf("%w: log entry partition", errCorrupt)
		}
		b = b[n:]
		key, rest, err := field(b)
		if err != nil {
			return nil, err
		}
		stored, rest, err := field(rest)
		if err != nil {
			return nil, err
		}
		b = rest
		r, err := decodeStored(key, stored)
		if err != nil {
			return nil, err
		}
		entries = append(entries, Entry{Partition: int(p), Record: r})
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the log entry's records", errCorrupt, len(b))
	}
	return entries, nil
}

// field splits a length-prefixed byte string off b.
func field(b []byte) (f, rest []byte, err error) {
	l, n := binary.Uvarint(b)
	if n <= 0 || l > uint64(len(b)-n) {
		return nil, nil, fmt.Errorf("%w: log entry field", errCorrupt)
	}
	return b[n : n+int(l)], b[n+int(l):], nil
}
