package server

import (
	"fmt"
	"net/http"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kv-async/internal/store"
)

// Replication, receiving side: POST /kv/internal/replicate.

// maxBatchBody caps a replication request body: a batch of
// MaxReplicationBatchBytes plus one more record, with room to spare.
const maxBatchBody = 2 * MaxReplicationBatchBytes

// handleReplicate applies a primary's batch, decoded once: the batch as a
// whole must pass checkBatch, or nothing of it is applied; then each
// section is judged on its own, inside the change that applies it:
//   - the receiver must be a replica or joining owner of the partition in
//     its map (after waiting for the sender's map version, if newer);
//   - the section's epoch must be at least the partition's epoch in the
//     receiver's map and the highest epoch it accepted a batch from
//     before: this fences a deposed primary that has not yet learnt it;
//   - a probe is answered with the receiver's cursor for the sender;
//   - records are applied only if the receiver holds the sender's index up
//     to the section's From (else it answers "gap" with its cursor), each
//     only if newer than the receiver's version of the key, and the cursor
//     moves to To in the same change.
func (s *Server) handleReplicate(w http.ResponseWriter, r *http.Request, role *clusterkit.Role) error {
	if ct := r.Header.Get("Content-Type"); ct != contentTypeBatch {
		return errorf(http.StatusUnsupportedMediaType, "Content-Type %q: want %s", ct, contentTypeBatch)
	}
	body, err := readBody(w, r, maxBatchBody)
	if err != nil {
		return err
	}
	req, err := decodeBatchRequest(body)
	if err != nil {
		return errorf(http.StatusBadRequest, "malformed batch: %v", err)
	}
	s.awaitMap(r.Context(), req.MapVersion)
	if err := s.checkBatch(req); err != nil {
		s.metrics.rejected.WithLabelValues(statusBadRecord).Inc()
		return err
	}
	if req.Sender == s.self {
		return errorf(http.StatusBadRequest, "batch sender %q is not another node", req.Sender)
	}
	*role = clusterkit.RoleReplica

	var results []sectionResult
	refused := map[string]int{}
	applied, skipped := 0, 0
	// The answer tells the primary the records are here: it is given, like
	// a client's, under the sync policy.
	err = s.store.Change(func(m *store.Change) error {
		results = make([]sectionResult, len(req.Sections))
		clear(refused)
		applied, skipped = 0, 0
		for i, sec := range req.Sections {
			res := &results[i]
			res.Partition = sec.Partition
			p := s.partition(sec.Partition)
			if p == nil {
				res.Status, res.Error = statusBadRecord, fmt.Sprintf("partition %d does not exist", sec.Partition)
				refused[res.Status]++
				continue
			}
			if role := s.role(p); role != clusterkit.RoleReplica && role != clusterkit.RoleJoining {
				res.Status, res.Error = statusNotOwner, fmt.Sprintf("this node is %s of %s at map version %d", role, p.ID, p.Version)
				refused[res.Status]++
				continue
			}
			if sec.Epoch < p.Epoch {
				res.Status, res.Error = statusStale, fmt.Sprintf("epoch %d is older than %s's epoch %d", sec.Epoch, p.ID, p.Epoch)
				refused[res.Status]++
				continue
			}
			if sec.Probe && s.ready(sec.Partition) != nil {
				res.Status = statusNotReady
				refused[res.Status]++
				continue
			}
			if err := checkRecords(sec.Records); err != nil {
				res.Status, res.Error = statusBadRecord, err.Error()
				refused[res.Status]++
				continue
			}
			f, err := m.Fence(sec.Partition)
			if err != nil {
				return err
			}
			if sec.Epoch < f {
				res.Status, res.Error = statusStale, fmt.Sprintf("epoch %d is older than epoch %d seen before", sec.Epoch, f)
				refused[res.Status]++
				continue
			}
			cur, _, err := m.Cursor(sec.Partition, req.Sender, req.Inc)
			if err != nil {
				return err
			}
			switch {
			case sec.Probe:
				// Record the sender as a source of the partition, even at
				// 0: promoted to primary, this node pulls from its sources
				// what they had not shipped yet.
				if err := m.Advance(sec.Partition, store.Cursor{Node: req.Sender, Inc: req.Inc, Seq: cur}); err != nil {
					return err
				}
				res.Status, res.Cursor = statusCursor, cur
				continue
			case sec.From > cur:
				res.Status, res.Cursor = statusGap, cur
				refused[res.Status]++
				continue
			}
			for _, rec := range sec.Records {
				ok, err := m.Merge(sec.Partition, rec)
				if err != nil {
					return err
				}
				if ok {
					applied++
				} else {
					skipped++
				}
			}
			if err := m.Advance(sec.Partition, store.Cursor{Node: req.Sender, Inc: req.Inc, Seq: sec.To}); err != nil {
				return err
			}
			if err := m.RaiseFence(sec.Partition, sec.Epoch); err != nil {
				return err
			}
			res.Status, res.Cursor, res.Applied = statusApplied, max(cur, sec.To), len(sec.Records)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.metrics.applied.WithLabelValues(recordsApplied).Add(float64(applied))
	s.metrics.applied.WithLabelValues(recordsSkipped).Add(float64(skipped))
	for reason, n := range refused {
		s.metrics.rejected.WithLabelValues(reason).Add(float64(n))
	}
	w.Header().Set("Content-Type", contentTypeBatch)
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(appendBatchResponse(nil, &batchResponse{MapVersion: s.ck.Version(), Results: results}))
	return err
}

// checkRecords validates replicated or migrated records.
func checkRecords(recs []store.Record) error {
	for _, rec := range recs {
		switch {
		case rec.Key == "":
			return fmt.Errorf("record with an empty key")
		case len(rec.Key) > MaxKeyBytes:
			return fmt.Errorf("record key of %d bytes exceeds %d", len(rec.Key), MaxKeyBytes)
		case len(rec.Value) > MaxValueBytes:
			return fmt.Errorf("record %q: value of %d bytes exceeds %d", rec.Key, len(rec.Value), MaxValueBytes)
		}
	}
	return nil
}
