package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kit/api"
	"clusterkit.dev/services/kit/migrate"
	"clusterkit.dev/services/kv-sync/internal/batch"
	"clusterkit.dev/services/kv-sync/internal/store"
)

// maxBatchBody caps a batch request: what a client puts in one
// (batch.MaxRequestBytes, or one op larger than that) and the framing.
const maxBatchBody = batch.MaxRequestBytes + MaxKeySize + MaxValueSize + 64<<10

// handleBatch serves POST /kv/batch: many replica reads and writes of one
// client in one request (see package batch for the format). Each op gets
// the answer its JSON form would: a read needs a ready owner holding the
// partition's data, a write any owner; the writes are stored with one
// commit. A malformed request is refused as a whole.
func (s *Server) handleBatch(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	api.AwaitMap(s.ck, r, replicaMapWait)
	body, err := readSized(http.MaxBytesReader(w, r.Body, maxBatchBody), r.ContentLength)
	if err != nil {
		apiErr := errBadRequest("read request body: " + err.Error())
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			apiErr = errTooLarge(fmt.Sprintf("batch body over %d bytes", maxBatchBody))
		}
		s.m.Observe(opBatch, roleReplica, result(s.writeError(w, apiErr)), start)
		return
	}
	ops, err := batch.ReadOps(body)
	if err != nil {
		s.m.Observe(opBatch, roleReplica, result(s.writeError(w, errBadRequest(err.Error()))), start)
		return
	}
	results := make([]batch.Result, len(ops))
	var writes []store.Entry
	var writeIdx []int
	for i, op := range ops {
		p, err := s.ck.GetPartition(op.Key)
		switch {
		case op.Key == "" || len(op.Key) > MaxKeySize || len(op.Value) > MaxValueSize:
			results[i].Status = batch.StatusInvalid
		case err != nil:
			results[i].Status = batch.StatusUnavailable
		case op.Kind == batch.OpWrite:
			results[i].Status = s.batchWrite(p, op, &writes)
			if results[i].Status == batch.StatusOK {
				writeIdx = append(writeIdx, i)
			}
		default:
			results[i] = s.batchRead(p, op.Key)
		}
	}
	if len(writes) > 0 {
		stored, err := s.store.Merge(writes)
		s.m.staleWrites.Add(float64(len(writes) - stored))
		if err != nil {
			s.log.Warn("batch write failed", "err", err)
			for _, i := range writeIdx {
				results[i].Status = batch.StatusUnavailable
			}
		}
	}
	var buf []byte
	for i := range results {
		buf = batch.AppendResult(buf, &results[i])
	}
	buf = batch.AppendEnd(buf, len(results))
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.Itoa(len(buf))) // not chunked, and the client sizes its buffer
	h.Set(clusterkit.HeaderMapVersion, strconv.FormatUint(s.ck.Version(), 10))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf)
	s.m.batchOps.Observe(float64(len(ops)))
	s.m.Observe(opBatch, roleReplica, api.ResultOK, start)
}

// readSized reads r to its end into a buffer sized for hint bytes (the
// request's Content-Length, -1 when unknown), so that a body of known
// length is read without growing the buffer.
func readSized(r io.Reader, hint int64) ([]byte, error) {
	var buf bytes.Buffer
	if hint > 0 && hint <= maxBody {
		buf.Grow(int(hint) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

// batchWrite checks a write and queues it for the batch's commit.
func (s *Server) batchWrite(p *clusterkit.Partition, op batch.Op, writes *[]store.Entry) byte {
	v := store.Version{Counter: op.Counter, Writer: op.Writer}
	switch {
	case v.IsZero(), v.Counter == math.MaxUint64:
		// A version that cannot be exceeded would freeze the key.
		return batch.StatusInvalid
	case !migrate.Owner(p, s.self):
		return batch.StatusNotOwner
	}
	rec := store.Record{Key: op.Key, Version: v, Deleted: op.Deleted}
	if !op.Deleted {
		rec.Value = op.Value
	}
	*writes = append(*writes, store.Entry{Partition: p.Index, Record: rec})
	return batch.StatusOK
}

// batchRead answers a read from this node's store.
func (s *Server) batchRead(p *clusterkit.Partition, key string) batch.Result {
	switch {
	case !migrate.ReadOwner(p, s.self):
		return batch.Result{Status: batch.StatusNotOwner}
	case !s.parts.Get(p.Index).Owned():
		return batch.Result{Status: batch.StatusUnavailable}
	}
	rec, found, err := s.store.Get(p.Index, key)
	switch {
	case err != nil:
		return batch.Result{Status: batch.StatusUnavailable}
	case !found:
		return batch.Result{Status: batch.StatusAbsent}
	}
	return batch.Result{Status: batch.StatusFound, Counter: rec.Version.Counter, Writer: rec.Version.Writer,
		Deleted: rec.Deleted, Value: rec.Value}
}
