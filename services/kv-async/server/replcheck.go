package server

import (
	"fmt"
	"net/http"

	"clusterkit.dev/clusterkit"
)

// The checks of a replication batch against this node's map, made by
// handleReplicate on the decoded batch before it applies anything, whatever the cluster token says: a batch that no
// primary of the map could have sent is refused whole (400, or 503 while
// this node's map is older than the sender's) and changes nothing, so
// that it can neither raise a partition's fence (which would make the
// real primary's batches stale) nor store a version the primary cannot
// exceed.

// maxWireSeq bounds the sequence numbers, epochs and index positions a
// batch may carry: far beyond what a node can hand out, far below 2^64,
// so no accepted version or cursor is one that cannot be exceeded.
const maxWireSeq = 1 << 62

// checkBatch refuses a batch unless every section could come from the
// partition's primary in this node's map:
//   - the sender is a member, and the partition exists;
//   - sections that handleReplicate refuses anyway, before the store
//     (this node does not replicate the partition, or the epoch is older
//     than the map's), are left to it; of the others:
//   - the section's epoch is not newer than the partition's epoch in the
//     map, and a section at that epoch comes from the partition's primary
//     (an older epoch is answered "stale" by handleReplicate);
//   - From <= To < maxWireSeq, and each record's version is no newer than
//     the section: its epoch at most the section's, and a record of the
//     section's epoch, written by the sender as primary, numbered at most
//     To (a primary numbers its writes with its index positions).
func (s *Server) checkBatch(req *batchRequest) error {
	if s.ck.Node(req.Sender) == nil {
		return errorf(http.StatusBadRequest, "batch sender %q is not a member", req.Sender)
	}
	behind := req.MapVersion > s.ck.Version()
	for i := range req.Sections {
		sec := &req.Sections[i]
		p := s.partition(sec.Partition)
		if p == nil {
			return errorf(http.StatusBadRequest, "section %d: partition %d does not exist", i, sec.Partition)
		}
		if role := s.role(p); (role != clusterkit.RoleReplica && role != clusterkit.RoleJoining) || sec.Epoch < p.Epoch {
			continue // handleReplicate refuses it (not owner, stale) before it touches the store
		}
		switch {
		case sec.Epoch > p.Epoch || (sec.Epoch == p.Epoch && p.PrimaryNode != req.Sender):
			code := http.StatusBadRequest
			if behind {
				code = http.StatusServiceUnavailable // the sender's map may be right: retry once ours caught up
			}
			return errorf(code, "section %d: partition %d at epoch %d from %s: this node's map (version %d) has epoch %d with primary %q",
				i, sec.Partition, sec.Epoch, req.Sender, s.ck.Version(), p.Epoch, p.PrimaryNode)
		case sec.From > sec.To || sec.To >= maxWireSeq || sec.Epoch >= maxWireSeq:
			return errorf(http.StatusBadRequest, "section %d: range (%d, %d] or epoch %d out of bounds", i, sec.From, sec.To, sec.Epoch)
		}
		for j := range sec.Records {
			v := sec.Records[j].Version
			if v.Epoch > sec.Epoch || v.Seq >= maxWireSeq || (v.Epoch == sec.Epoch && v.Seq > sec.To) {
				return errorf(http.StatusBadRequest, "section %d, record %d: version %s is newer than the section (epoch %d, up to %d)",
					i, j, v, sec.Epoch, sec.To)
			}
		}
	}
	return nil
}

// checkFrame refuses a partition stream's frame that carries a version,
// an index position or a cursor at or beyond maxWireSeq: one a primary
// could never exceed, which would hide its later writes of the key, or
// make it skip the node when it ships.
func checkFrame(f *streamFrame) error {
	for i := range f.Records {
		if v := f.Records[i].Version; v.Epoch >= maxWireSeq || v.Seq >= maxWireSeq {
			return fmt.Errorf("stream record %q: version %s out of bounds", f.Records[i].Key, v)
		}
	}
	if f.End == nil {
		return nil
	}
	if f.End.Head >= maxWireSeq {
		return fmt.Errorf("stream end: head %d out of bounds", f.End.Head)
	}
	for _, c := range f.End.Cursors {
		if c.Seq >= maxWireSeq {
			return fmt.Errorf("stream end: cursor of %s at %d out of bounds", c.Node, c.Seq)
		}
	}
	return nil
}
