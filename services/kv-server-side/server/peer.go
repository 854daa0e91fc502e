package server

import (
	"fmt"
	"sync"
	"time"

	"clusterkit.dev/services/kit/api"
	"clusterkit.dev/services/kit/stream"
)

// peer is the queue of writes to one node.
type peer struct {
	r    *replicator
	id   string
	addr string

	mu sync.Mutex
	q  batchQueue[*repItem]
	// inflight is the batch being sent.
	inflight []*repItem
	// lagging is set while writes do not wait for the node; nextSend is
	// then the earliest time of its next request.
	lagging  bool
	nextSend time.Time
}

func newPeer(r *replicator, id, addr string) *peer {
	return &peer{r: r, id: id, addr: addr, q: batchQueue[*repItem]{
		maxInflight: maxInflight, maxCount: maxBatchCount, maxBytes: maxBatchBytes, size: (*repItem).size,
	}}
}

// run sends the queue in batches until it is empty and the node in sync;
// while the node lags it sends one batch, possibly empty, every
// probeInterval. It returns when the server closes, or when a lagging
// node with nothing queued has left the cluster (or changed address).
func (pr *peer) run() {
	defer pr.r.wg.Done()
	var buf []byte
	pr.q.run(pr.r.s.ctx, &pr.mu, pr.next, func(batch []*repItem) { buf = pr.send(buf, batch) })
}

// next tells run whether to stop, or how long to wait before the next
// batch; pr.mu is held.
func (pr *peer) next() (stop bool, wait time.Duration) {
	s := pr.r.s
	gone := false
	if pr.lagging && pr.q.len() == 0 {
		node := s.ck.Node(pr.id)
		gone = node == nil || node.IP != pr.addr
	}
	if pr.r.closed.Load() || s.ctx.Err() != nil || gone || (pr.q.len() == 0 && !pr.lagging) {
		if gone {
			pr.lagging = false
		}
		return true, 0
	}
	if pr.lagging {
		return false, time.Until(pr.nextSend)
	}
	return false, 0
}

// send sends one batch, bounded by ReplicaLagTimeout before the node counts
// as lagging, and delivers each record's outcome. It returns buf, the
// encoding buffer, for the next batch.
func (pr *peer) send(buf []byte, batch []*repItem) []byte {
	s := pr.r.s
	pr.mu.Lock()
	pr.inflight = batch
	pr.mu.Unlock()

	lag := time.AfterFunc(s.cfg.ReplicaLagTimeout, pr.lag)
	var statuses []byte
	var nodeVersion uint64
	var err error
	buf, statuses, nodeVersion, err = pr.post(buf, batch)
	lag.Stop()

	pr.mu.Lock()
	pr.inflight = nil
	waiters := takeWaiters(batch)
	var dropped []*repItem
	var droppedWaiters []chan<- repResult
	wasLagging := pr.lagging
	if err != nil {
		// The node failed: it lags, and what is queued for it
		// fails rather than wait for the next probe.
		pr.lagging = true
		pr.nextSend = time.Now().Add(probeInterval)
		dropped = pr.q.drain()
		droppedWaiters = takeWaiters(dropped)
	} else {
		pr.lagging = false
	}
	pr.mu.Unlock()

	switch {
	case err != nil:
		s.m.replBatches.WithLabelValues(api.ResultError).Inc()
		if !wasLagging {
			s.log.Warn("owner lagging: replication failed", "node", pr.id, "err", err)
		} else {
			s.log.Debug("replication probe failed", "node", pr.id, "records", len(batch), "err", err)
		}
	case wasLagging:
		s.m.replBatches.WithLabelValues(api.ResultOK).Inc()
		s.log.Info("owner in sync again", "node", pr.id)
	default:
		s.m.replBatches.WithLabelValues(api.ResultOK).Inc()
	}
	s.m.replBatch.Observe(float64(len(batch)))
	for i, it := range batch {
		res := repResult{err: err, nodeVersion: nodeVersion}
		if err == nil {
			res.status = statuses[i]
		}
		pr.r.finish(it, pr.id, res, waiters[i])
	}
	for i, it := range dropped {
		pr.r.finish(it, pr.id, repResult{err: fmt.Errorf("%w (dropped: the node failed)", errLagging)}, droppedWaiters[i])
	}
	s.m.replPending.Sub(float64(len(batch) + len(dropped)))
	return buf
}

// lag runs when the batch in flight has not answered within
// ReplicaLagTimeout: the node is lagging, and the writes waiting for it,
// sent or queued, are released.
func (pr *peer) lag() {
	pr.mu.Lock()
	was := pr.lagging
	pr.lagging = true
	waiters := append(takeWaiters(pr.inflight), takeWaiters(pr.q.items)...)
	pr.mu.Unlock()
	if !was {
		pr.r.s.log.Warn("owner lagging: no answer to replication", "node", pr.id, "after", pr.r.s.cfg.ReplicaLagTimeout)
	}
	for _, w := range waiters {
		if w != nil {
			w <- repResult{node: pr.id, err: errLagging}
		}
	}
}

// post sends one batch and returns the node's statuses, one per record, and
// its map version, bounded by ReplicationTimeout.
func (pr *peer) post(buf []byte, batch []*repItem) ([]byte, []byte, uint64, error) {
	buf = buf[:0]
	for _, it := range batch {
		buf = stream.AppendRecord(buf, &it.rec)
	}
	buf = stream.AppendEnd(buf, len(batch))
	a, err := pr.r.s.postBatch(pr.addr, "/kv/internal/replicate", pr.r.s.cfg.ReplicationTimeout, buf)
	if err != nil {
		return buf, nil, 0, err
	}
	if len(a.body) != len(batch) {
		return buf, nil, 0, fmt.Errorf("answered %d statuses for %d records", len(a.body), len(batch))
	}
	return buf, a.body, a.mapVersion, nil
}
