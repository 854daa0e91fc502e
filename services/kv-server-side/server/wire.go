package server

import (
	"io"

	"clusterkit.dev/services/kit/stream"
	"clusterkit.dev/services/kv-server-side/internal/store"
)

// Records travel between nodes (partition copies and replication) as the
// kit's record stream (package stream), bounded as the API bounds writes.
const (
	// maxWireValue bounds a forwarded batch's reply body.
	maxWireValue = 8 << 20
	// MaxVersionNumber bounds a version's epoch and sequence number: a
	// decoder refuses a record whose either number is at or above it, so
	// that no version stored is one that cannot be exceeded. Sequence
	// numbers are wall-clock milliseconds shifted left by 16 bits (see
	// clock), about 2^57 today, and reach 2^62 in the year 4200.
	MaxVersionNumber = 1 << 62
)

// streamLimits bound the records a node accepts from another: a key of 1
// to MaxKeySize bytes, a value of at most MaxValueSize, and an epoch and
// sequence number below MaxVersionNumber, as for any write the API
// accepts.
var streamLimits = stream.Limits{MaxKey: MaxKeySize, MaxValue: MaxValueSize, MaxVersion: MaxVersionNumber}

// newFrameReader returns a decoder of the records in r.
func newFrameReader(r io.Reader) *stream.Reader[store.Version] {
	return stream.NewReader(r, store.VersionOf, streamLimits)
}
