package server

import "clusterkit.dev/services/kv-async/internal/store"

// The node-to-node protocol of kv-async, gob-encoded: replication batches
// from a primary to its replicas (POST /kv/internal/replicate) and the
// partition stream a node copies a partition with (GET /kv/internal/stream).

// Paths of the node-to-node endpoints.
const (
	pathReplicate = "/kv/internal/replicate"
	pathStream    = "/kv/internal/stream"
)

// contentTypeGob marks gob bodies.
const contentTypeGob = "application/x-gob"

// batchRequest carries, for some partitions of which the sender is the
// primary, the records of its index after what the receiver is known to
// hold.
type batchRequest struct {
	// Sender is the primary's node ID and Inc its store incarnation: the
	// sections' From and To are positions in that store's index.
	Sender string
	Inc    uint64
	// MapVersion is the sender's map version: a receiver whose map is
	// older waits for it before judging ownership.
	MapVersion uint64
	Sections   []section
}

// section is one partition's part of a batch.
type section struct {
	Partition int
	// Epoch is the partition's epoch in the sender's map: a receiver that
	// has seen a newer epoch refuses the section (the sender was deposed).
	Epoch uint64
	// Probe asks for the receiver's cursor only; it carries no records.
	Probe bool
	// From and To bound the index range (From, To] the records come from:
	// the receiver applies them only if it holds everything up to From.
	From, To uint64
	Records  []store.Record
}

// Section statuses.
const (
	statusApplied   = "applied"     // records applied; Cursor is the new cursor
	statusCursor    = "cursor"      // answer to a probe
	statusGap       = "gap"         // From is beyond the receiver's cursor
	statusStale     = "stale_epoch" // the receiver has seen a newer epoch
	statusNotOwner  = "not_owner"   // the receiver does not own the partition
	statusNotReady  = "not_ready"   // the receiver is still copying the partition
	statusBadRecord = "bad_record"  // a record was invalid
)

// batchResponse answers a batchRequest section by section.
type batchResponse struct {
	MapVersion uint64
	Results    []sectionResult
}

type sectionResult struct {
	Partition int
	Status    string
	// Cursor is the receiver's cursor for the sender after the section.
	Cursor  uint64
	Applied int
	Error   string
}

// streamFrame is one message of a partition stream: records, then a last
// frame with End set.
type streamFrame struct {
	Records []store.Record
	End     *streamEnd
}

// streamEnd closes a stream: the receiver now holds everything the source
// held in the partition when the stream began.
type streamEnd struct {
	// Node and Inc identify the source; Head is the last position of its
	// index in the stream.
	Node string
	Inc  uint64
	Head uint64
	// Cursors are the source's own cursors for the partition: the receiver
	// inherits them, since it now holds everything the source did.
	Cursors []store.Cursor
	// Records counts the records streamed.
	Records int
}
