package server

import (
	"errors"
	"net/http"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kv-async/internal/batch"
	"clusterkit.dev/services/kv-async/internal/store"
)

// POST /kv/batch carries many sets and deletes in one request, in the
// binary format of package batch: the client sends the writes that
// queue up for one primary while its previous batch is in flight. Each op
// is judged as its single request would be (the key's primary only, the
// same limits) and has its own result; the ops this node accepts are
// logged as one entry, so they share one fsync.

// maxOpsBody caps the body of a batch: at least one op of the largest
// key and value, and many small ones.
const maxOpsBody = 8 << 20

func (s *Server) handleBatch(w http.ResponseWriter, r *http.Request, role *clusterkit.Role) error {
	body, err := readBody(w, r, maxOpsBody)
	if err != nil {
		return err
	}
	ops, err := batch.DecodeRequest(body)
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	results := make([]batch.Result, len(ops))
	writes := make([]store.BatchWrite, 0, len(ops))
	index := make([]int, 0, len(ops)) // the op of each write
	waited := false
	opErrs := make([]error, len(ops))
	defer func() {
		for i := range ops {
			s.metrics.observeBatchOp(opName(ops[i].Kind), opErrs[i])
		}
	}()
	for i := range ops {
		op := &ops[i]
		key := string(op.Key)
		if err := checkKey(key); err != nil {
			results[i], opErrs[i] = failed(err), err
			continue
		}
		if len(op.Value) > MaxValueBytes {
			err := errorf(http.StatusRequestEntityTooLarge, "value is %d bytes, the limit is %d", len(op.Value), MaxValueBytes)
			results[i], opErrs[i] = failed(err), err
			continue
		}
		p, err := s.ck.GetPartition(key)
		if err != nil {
			return err
		}
		if s.role(p) != clusterkit.RolePrimary && !waited {
			// Judge by the client's map if it is newer than ours.
			s.awaitMap(r.Context(), requestMapVersion(r))
			waited = true
		}
		idx := p.Index
		writes = append(writes, store.BatchWrite{Partition: idx, Key: key, Value: op.Value, Deleted: op.Kind == batch.Delete,
			Check: func() (uint64, error) { return s.primaryEpoch(idx) }})
		index = append(index, i)
	}
	if len(writes) > 0 {
		*role = clusterkit.RolePrimary
		if err := s.store.WriteBatch(writes); err != nil {
			for _, i := range index {
				opErrs[i] = err
			}
			return err
		}
	}
	notify := false
	for j := range writes {
		wr, res := &writes[j], &results[index[j]]
		if wr.Err != nil {
			*res, opErrs[index[j]] = failed(wr.Err), wr.Err
			continue
		}
		*res = batch.Result{Code: http.StatusOK, Epoch: wr.Record.Version.Epoch, Seq: wr.Record.Version.Seq, Existed: wr.Existed || !wr.Deleted}
		notify = notify || wr.Existed || !wr.Deleted
	}
	if notify {
		s.repl.notify()
	}
	w.Header()["Content-Type"] = contentTypeBatchOps
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(batch.AppendAnswer(make([]byte, 0, 16*len(results)), results))
	return nil
}

// contentTypeBatchOps is the Content-Type of POST /kv/batch's answers.
var contentTypeBatchOps = []string{batch.ContentType}

// primaryEpoch returns partition idx's epoch if this node is its primary
// in the current map, or the StatusNotOwner error, or a 503 while the
// partition's replication is behind by more than MaxReplicationLag (see
// replicator.admit). A write checks it
// inside its change: a node that stops being primary accepts nothing
// after the map change, which is what lets a new owner copy everything
// this node acknowledged.
func (s *Server) primaryEpoch(idx int) (uint64, error) {
	cur := s.partition(idx)
	if s.role(cur) != clusterkit.RolePrimary {
		if cur == nil {
			return 0, errorf(http.StatusServiceUnavailable, "no partition %d in this node's map", idx)
		}
		return 0, s.notOwner(cur, "this node is not the primary of "+cur.ID)
	}
	if err := s.repl.admit(idx); err != nil {
		return 0, err
	}
	return cur.Epoch, nil
}

// opName is an op kind's name in metrics.
func opName(kind byte) string {
	if kind == batch.Delete {
		return opDelete
	}
	return opSet
}

// failed is the result of an op that failed with err.
func failed(err error) batch.Result {
	var he *httpError
	if errors.As(err, &he) {
		return batch.Result{Code: he.code, Message: he.msg}
	}
	return batch.Result{Code: statusOf(err), Message: err.Error()}
}
