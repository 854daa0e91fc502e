package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kit/api"
	"clusterkit.dev/services/kit/migrate"
	"clusterkit.dev/services/kit/stream"
	"clusterkit.dev/services/kv-server-side/internal/store"
)

// Replication: the primary sends each write to every other owner of the
// partition, replicas and joining nodes alike. Writes to one node are
// batched: up to maxInflight requests per node are in flight, and the writes
// that queue up meanwhile leave together in the next request, so a busy
// primary makes few requests and each replica commits a batch with one
// fsync. A replica answers one status byte per record.
//
// An owner that does not answer (paused, cut off, dead, or far slower than
// the others) must hold up no write for long. A request that has not
// answered within ReplicaLagTimeout, or that failed, makes its owner
// lagging: the writes waiting for it are released at once (they count it
// as not stored), and later writes do not wait for it. Writes are still
// queued for a lagging owner, in the background and bounded (maxQueue,
// maxQueueBytes), and one request at a time, at most every probeInterval,
// goes out to it (empty when nothing is queued): the first that answers
// makes it in sync again. A write needs a majority of the partition's ready
// owners; when fewer are in sync it fails at once, before it is applied.
const (
	maxInflight   = 1
	maxBatchCount = 256
	maxBatchBytes = 4 << 20
	// maxQueue and maxQueueBytes bound a node's queue of writes nobody
	// waits for (AckPrimary, or for a lagging owner); beyond them writes
	// are dropped for that node and counted.
	maxQueue      = 1 << 16
	maxQueueBytes = 64 << 20
	// probeInterval is how often a lagging owner gets a request.
	probeInterval = 100 * time.Millisecond
)

// Statuses of a replicated record, one byte each in a replica's answer.
const (
	statusStored     byte = 0 // stored, or the replica holds a newer version
	statusStaleEpoch byte = 1 // the replica knows a newer primary: the sender is deposed
	statusNotOwner   byte = 2 // the replica does not own the partition in its map
)

var (
	errLagging   = errors.New("owner lagging (it did not answer within the lag timeout)")
	errQueueFull = errors.New("replication queue full")
	errClosing   = errors.New("server closing")
)

// replicator sends writes from this node, as primary, to other owners.
type replicator struct {
	s      *Server
	closed atomic.Bool
	wg     sync.WaitGroup

	mu    sync.Mutex
	peers map[string]*peer
}

func newReplicator(s *Server) *replicator {
	return &replicator{s: s, peers: map[string]*peer{}}
}

// peer is the queue of writes to one node.
type peer struct {
	r    *replicator
	id   string
	addr string

	mu     sync.Mutex
	queue  []*repItem
	bytes  int // keys and values in queue
	active int
	// inflight is the batch being sent.
	inflight []*repItem
	// lagging is set while writes do not wait for the node; nextSend is
	// then the earliest time of its next request.
	lagging  bool
	nextSend time.Time
}

// repItem is one write on its way to one node.
type repItem struct {
	rec  store.Record
	sent time.Time
	// res receives the outcome; nil for a write nobody waits for. Once
	// the item is queued it is read and cleared under its peer's mu.
	res chan<- repResult
}

type repResult struct {
	node   string
	status byte
	// nodeVersion is the map version of the node that answered.
	nodeVersion uint64
	err         error
}

// replicate sends rec to p's other owners, runs local (the primary's own
// commit) meanwhile, and waits, at most ReplicationTimeout, until each owner
// in sync answered (a lagging owner is not waited for). It succeeds when
// local did and a majority of p's ready owners (this primary included)
// stored rec, and fails if any owner knows a newer primary. When fewer than
// a majority of the ready owners are in sync it fails at once, without
// applying rec.
func (r *replicator) replicate(p *clusterkit.Partition, rec store.Record, local func() error) error {
	ready := 1 + len(p.ReplicaNodes)
	need := ready/2 + 1
	if insync := 1 + len(p.ReplicaNodes) - r.lagging(p.ReplicaNodes); insync < need {
		return errUnavailable(fmt.Sprintf("%d of the %d owners of partition %d are in sync, %d needed (the write was not applied); retry",
			insync, ready, p.Index, need))
	}
	targets := len(p.ReplicaNodes) + len(p.JoiningNodes)
	res := make(chan repResult, targets)
	now := time.Now()
	for _, ids := range [][]string{p.ReplicaNodes, p.JoiningNodes} {
		for _, id := range ids {
			r.enqueue(id, &repItem{rec: rec, sent: now, res: res})
		}
	}
	if err := local(); err != nil {
		return err
	}
	stored, fenced := 1, false
	var newest uint64
	var failures []string
	timer := time.NewTimer(r.s.cfg.ReplicationTimeout)
	defer timer.Stop()
collect:
	for got := 0; got < targets; got++ {
		select {
		case a := <-res:
			newest = max(newest, a.nodeVersion)
			switch {
			case a.err != nil:
				failures = append(failures, a.node+": "+a.err.Error())
			case a.status == statusStaleEpoch:
				fenced = true
			case a.status == statusNotOwner:
				failures = append(failures, a.node+": not an owner in its map")
			case isReplica(p, a.node):
				stored++
			}
		case <-timer.C:
			failures = append(failures, fmt.Sprintf("%d owners did not answer within %v", targets-got, r.s.cfg.ReplicationTimeout))
			break collect
		}
	}
	if fenced {
		return errUnavailable(fmt.Sprintf("partition %d has a newer primary than this node knows; retry", p.Index))
	}
	if stored < need {
		return errUnavailable(fmt.Sprintf("write stored on %d of %d owners of partition %d, %d needed: %v",
			stored, ready, p.Index, need, failures))
	}
	if newest > p.Version {
		r.reachNewOwners(p, rec, newest)
	}
	return nil
}

// reachNewOwners is called when an owner answered with a newer map than
// the one the write was sent with: the partition may have gained an owner
// the write did not reach, and a joining owner copying the partition must
// see every write made meanwhile. It waits briefly for this node's map to
// catch up and sends rec to the owners the newer map adds, waiting for
// their answers. It is best effort: the write is already stored by a
// majority.
func (r *replicator) reachNewOwners(old *clusterkit.Partition, rec store.Record, v uint64) {
	s := r.s
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ReplicationTimeout)
	defer cancel()
	_ = s.ck.WaitForMap(ctx, v)
	p, err := s.ck.GetPartition(rec.Key)
	if err != nil {
		return
	}
	var extra []string
	for _, ids := range [][]string{p.ReplicaNodes, p.JoiningNodes} {
		for _, id := range ids {
			if id != s.self && !migrate.Owner(old, id) {
				extra = append(extra, id)
			}
		}
	}
	res := make(chan repResult, len(extra))
	for _, id := range extra {
		r.enqueue(id, &repItem{rec: rec, sent: time.Now(), res: res})
	}
	for range extra {
		select {
		case <-res:
		case <-ctx.Done():
			return
		}
	}
}

// replicateAsync sends rec to p's other owners in the background.
func (r *replicator) replicateAsync(p *clusterkit.Partition, rec store.Record) {
	now := time.Now()
	for _, ids := range [][]string{p.ReplicaNodes, p.JoiningNodes} {
		for _, id := range ids {
			r.enqueue(id, &repItem{rec: rec, sent: now})
		}
	}
}

func isReplica(p *clusterkit.Partition, id string) bool {
	for _, r := range p.ReplicaNodes {
		if r == id {
			return true
		}
	}
	return false
}

// lagging returns how many of the nodes ids are lagging.
func (r *replicator) lagging(ids []string) int {
	n := 0
	for _, id := range ids {
		r.mu.Lock()
		pr := r.peers[id]
		r.mu.Unlock()
		if pr == nil {
			continue
		}
		pr.mu.Lock()
		if pr.lagging {
			n++
		}
		pr.mu.Unlock()
	}
	return n
}

// enqueue queues it for node id and starts a sender if fewer than
// maxInflight are running. A write for a lagging node is queued in the
// background and its waiter is told at once (errLagging).
func (r *replicator) enqueue(id string, it *repItem) {
	node := r.s.ck.Node(id)
	if node == nil {
		r.finish(it, id, repResult{err: errors.New("not a member")}, it.res)
		return
	}
	pr := r.peer(node)
	size := len(it.rec.Key) + len(it.rec.Value)
	pr.mu.Lock()
	if r.closed.Load() {
		pr.mu.Unlock()
		r.finish(it, id, repResult{err: errClosing}, it.res)
		return
	}
	var released chan<- repResult
	if pr.lagging {
		released, it.res = it.res, nil
	}
	if it.res == nil && (len(pr.queue) >= maxQueue || pr.bytes+size > maxQueueBytes) {
		pr.mu.Unlock()
		r.finish(it, id, repResult{err: errQueueFull}, released)
		return
	}
	pr.queue = append(pr.queue, it)
	pr.bytes += size
	r.s.m.replPending.Inc()
	if pr.active < maxInflight {
		pr.active++
		r.wg.Add(1)
		go pr.run()
	}
	pr.mu.Unlock()
	if released != nil {
		released <- repResult{node: id, err: errLagging}
	}
}

// peer returns the queue of node, replacing it if the node's address
// changed.
func (r *replicator) peer(node *clusterkit.Node) *peer {
	r.mu.Lock()
	defer r.mu.Unlock()
	pr := r.peers[node.ID]
	if pr == nil || pr.addr != node.IP {
		pr = &peer{r: r, id: node.ID, addr: node.IP}
		r.peers[node.ID] = pr
	}
	return pr
}

// finish counts the outcome of one item and sends it to waiter, if any.
func (r *replicator) finish(it *repItem, node string, res repResult, waiter chan<- repResult) {
	res.node = node
	m := r.s.m
	switch {
	case errors.Is(res.err, errQueueFull):
		m.replRecords.WithLabelValues(replDropped).Inc()
	case res.err != nil:
		m.replRecords.WithLabelValues(replFailed).Inc()
	case res.status == statusStaleEpoch:
		m.replRecords.WithLabelValues(replStaleEpoch).Inc()
	case res.status == statusNotOwner:
		m.replRecords.WithLabelValues(replNotOwner).Inc()
	default:
		m.replRecords.WithLabelValues(replOK).Inc()
		m.replLag.Observe(time.Since(it.sent).Seconds())
	}
	if waiter != nil {
		waiter <- res
	}
}

// takeWaiters clears and returns the waiters of items; pr.mu is held.
func takeWaiters(items []*repItem) []chan<- repResult {
	ws := make([]chan<- repResult, len(items))
	for i, it := range items {
		ws[i], it.res = it.res, nil
	}
	return ws
}

// run sends the queue in batches until it is empty and the node in sync;
// while the node lags it sends one batch, possibly empty, every
// probeInterval. It returns when the server closes, or when a lagging
// node with nothing queued has left the cluster (or changed address).
func (pr *peer) run() {
	defer pr.r.wg.Done()
	s := pr.r.s
	var buf []byte
	for {
		pr.mu.Lock()
		gone := false
		if pr.lagging && len(pr.queue) == 0 {
			node := s.ck.Node(pr.id)
			gone = node == nil || node.IP != pr.addr
		}
		if pr.r.closed.Load() || s.ctx.Err() != nil || gone || (len(pr.queue) == 0 && !pr.lagging) {
			pr.active--
			if gone {
				pr.lagging = false
			}
			pr.mu.Unlock()
			return
		}
		if wait := time.Until(pr.nextSend); pr.lagging && wait > 0 {
			pr.mu.Unlock()
			t := time.NewTimer(wait)
			select {
			case <-s.ctx.Done():
			case <-t.C:
			}
			t.Stop()
			continue
		}
		n, size := 0, 0
		for n < len(pr.queue) && n < maxBatchCount && (n == 0 || size < maxBatchBytes) {
			size += len(pr.queue[n].rec.Key) + len(pr.queue[n].rec.Value)
			n++
		}
		batch := make([]*repItem, n)
		copy(batch, pr.queue)
		rest := copy(pr.queue, pr.queue[n:])
		clear(pr.queue[rest:])
		pr.queue = pr.queue[:rest]
		pr.bytes -= size
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
			dropped, pr.queue, pr.bytes = pr.queue, nil, 0
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
	}
}

// lag runs when the batch in flight has not answered within
// ReplicaLagTimeout: the node is lagging, and the writes waiting for it,
// sent or queued, are released.
func (pr *peer) lag() {
	pr.mu.Lock()
	was := pr.lagging
	pr.lagging = true
	waiters := append(takeWaiters(pr.inflight), takeWaiters(pr.queue)...)
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
// its map version.
func (pr *peer) post(buf []byte, batch []*repItem) ([]byte, []byte, uint64, error) {
	buf = buf[:0]
	for _, it := range batch {
		buf = stream.AppendRecord(buf, &it.rec)
	}
	buf = stream.AppendEnd(buf, len(batch))
	s := pr.r.s
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ReplicationTimeout)
	defer cancel()
	a, err := s.nodes.post(ctx, pr.addr, "/kv/internal/replicate", s.self, s.ck.Version(), buf)
	if err != nil {
		return buf, nil, 0, err
	}
	if a.status != http.StatusOK {
		return buf, nil, 0, fmt.Errorf("answered %d: %s", a.status, bytes.TrimSpace(a.body[:min(len(a.body), 1024)]))
	}
	if len(a.body) != len(batch) {
		return buf, nil, 0, fmt.Errorf("answered %d statuses for %d records", len(a.body), len(batch))
	}
	return buf, a.body, a.mapVersion, nil
}

// awaitSenderMap waits briefly when the request comes from a node with a
// newer map than this node's, so that a node just made an owner accepts it.
func (s *Server) awaitSenderMap(r *http.Request) {
	v, err := strconv.ParseUint(r.Header.Get(clusterkit.HeaderMapVersion), 10, 64)
	if err != nil || v <= s.ck.Version() {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	_ = s.ck.WaitForMap(ctx, v)
}

// close fails queued writes and waits for the senders to return. Writes in
// flight fail too: the server's context is already cancelled.
func (r *replicator) close() {
	r.closed.Store(true)
	r.mu.Lock()
	peers := make([]*peer, 0, len(r.peers))
	for _, pr := range r.peers {
		peers = append(peers, pr)
	}
	r.mu.Unlock()
	for _, pr := range peers {
		// enqueue checks closed under pr.mu: after this no sender starts.
		pr.mu.Lock()
		queued := pr.queue
		pr.queue, pr.bytes = nil, 0
		waiters := takeWaiters(queued)
		pr.mu.Unlock()
		for i, it := range queued {
			r.finish(it, pr.id, repResult{err: errClosing}, waiters[i])
		}
		r.s.m.replPending.Sub(float64(len(queued)))
	}
	r.wg.Wait()
}

// MaxClockSkew bounds how far a replicated write's sequence number may be
// ahead of the receiving node's clock. A sequence number is a reading of
// the primary's clock (wall-clock milliseconds shifted left by 16 bits), so
// one from further ahead was not made by a member whose clock agrees with
// this node's: it is refused, since a record of the current epoch with a
// sequence number far ahead would win over every real write of its key
// made before the clocks reach it. Members' clocks must agree within
// MaxClockSkew, or replication between them is refused.
const MaxClockSkew = 5 * time.Second

// seqCeiling returns the greatest sequence number a replicated write may
// carry at time now.
func seqCeiling(now time.Time) uint64 {
	return uint64(now.Add(MaxClockSkew).UnixMilli())<<16 | 0xffff
}

// handleReplicate serves POST /kv/internal/replicate: writes sent by a primary.
// A batch holding a malformed record (see frameReader.next) or a record
// whose sequence number is beyond seqCeiling is refused whole with 400,
// and nothing of it is stored. Each record is then checked against this
// node's map: it must own the partition, the record's epoch must not be
// older than the partition's (a deposed primary is refused) nor newer
// (this node's map is behind, or the epoch is forged: it answers not
// owner, as when it does not own the partition), and a record of the
// partition's current epoch is refused (not owner) by the partition's
// primary, since only the primary itself numbers writes of its epoch. When
// the sender's map is newer, the node first waits briefly for it, so that
// a node just added as owner accepts its first writes.
func (s *Server) handleReplicate(w http.ResponseWriter, r *http.Request) {
	s.awaitSenderMap(r)
	fr := newFrameReader(r.Body)
	ceiling := seqCeiling(time.Now())
	var entries []store.Entry
	var statuses []byte
	for {
		rec, err := fr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			s.writeError(w, bodyError(err))
			return
		}
		if rec.Version.Seq > ceiling {
			s.writeError(w, errBadRequest(fmt.Sprintf("record %q: seq %d is ahead of this node's clock by more than %v (ceiling %d)",
				rec.Key, rec.Version.Seq, MaxClockSkew, ceiling)))
			return
		}
		p, perr := s.ck.GetPartition(rec.Key)
		switch {
		case perr != nil || !migrate.Owner(p, s.self):
			statuses = append(statuses, statusNotOwner)
		case rec.Version.Epoch < p.Epoch:
			statuses = append(statuses, statusStaleEpoch)
		case rec.Version.Epoch > p.Epoch, rec.Version.Epoch == p.Epoch && p.PrimaryNode == s.self:
			statuses = append(statuses, statusNotOwner)
		default:
			statuses = append(statuses, statusStored)
			entries = append(entries, store.Entry{Partition: p.Index, Record: rec})
		}
	}
	if _, err := s.store.Merge(entries); err != nil {
		s.writeError(w, fmt.Errorf("store merge: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set(clusterkit.HeaderMapVersion, strconv.FormatUint(s.ck.Version(), 10))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(statuses)
}
