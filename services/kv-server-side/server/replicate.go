package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kit/migrate"
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

// repItem is one write on its way to one node.
type repItem struct {
	rec  store.Record
	sent time.Time
	// res receives the outcome; nil for a write nobody waits for. Once
	// the item is queued it is read and cleared under its peer's mu.
	res chan<- repResult
}

// size returns the bytes the item counts for in its queue.
func (it *repItem) size() int { return len(it.rec.Key) + len(it.rec.Value) }

type repResult struct {
	node   string
	status byte
	// nodeVersion is the map version of the node that answered.
	nodeVersion uint64
	err         error
}

// replication is one write on its way from this primary to the other
// owners of its partition, from start to wait.
type replication struct {
	r   *replicator
	p   *clusterkit.Partition
	rec store.Record
	// ready is the number of p's ready owners, this primary included;
	// need is a majority of them.
	ready, need int
	// targets is the number of owners rec was sent to; res receives one
	// result from each (buffered: a sender never waits for the waiter).
	targets int
	res     chan repResult
}

// start sends rec to p's other owners, replicas and joining nodes alike,
// and returns at once: the caller stores the primary's own copy meanwhile,
// then calls wait. When fewer than a majority of p's ready owners are in
// sync, start fails at once and sends nothing: the caller must not apply
// rec.
func (r *replicator) start(p *clusterkit.Partition, rec store.Record) (*replication, error) {
	ready := 1 + len(p.ReplicaNodes)
	need := ready/2 + 1
	if insync := ready - r.lagging(p.ReplicaNodes); insync < need {
		return nil, errUnavailable(fmt.Sprintf("%d of the %d owners of partition %d are in sync, %d needed (the write was not applied); retry",
			insync, ready, p.Index, need))
	}
	targets := len(p.ReplicaNodes) + len(p.JoiningNodes)
	w := &replication{r: r, p: p, rec: rec, ready: ready, need: need,
		targets: targets, res: make(chan repResult, targets)}
	r.sendAll(p, rec, w.res)
	return w, nil
}

// wait waits, at most ReplicationTimeout, until each owner in sync answered
// (a lagging owner is not waited for). It succeeds when a majority of the
// partition's ready owners, the primary included, stored the record (the
// caller has stored the primary's copy), and fails if any owner knows a
// newer primary.
//
// When ctx is done first, wait returns ctx's error and the write is left
// as a failed replication would leave it: stored on the primary, still on
// its way to the other owners (the batches it is queued in are sent, on
// the server's context, whatever becomes of the request), and neither
// acknowledged nor visible: the caller does not mark it committed, so a
// read of its key first has it stored on a majority (see readPrimary). A
// cancelled wait never turns into an acknowledgement, and never withdraws
// one.
func (w *replication) wait(ctx context.Context) error {
	r, p := w.r, w.p
	stored, fenced := 1, false
	var newest uint64
	var failures []string
	timer := time.NewTimer(r.s.cfg.ReplicationTimeout)
	defer timer.Stop()
collect:
	for got := 0; got < w.targets; got++ {
		select {
		case a := <-w.res:
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
			failures = append(failures, fmt.Sprintf("%d owners did not answer within %v", w.targets-got, r.s.cfg.ReplicationTimeout))
			break collect
		case <-ctx.Done():
			return fmt.Errorf("waiting for the owners of partition %d to store the write (it is not acknowledged): %w", p.Index, ctx.Err())
		}
	}
	if fenced {
		return errUnavailable(fmt.Sprintf("partition %d has a newer primary than this node knows; retry", p.Index))
	}
	if stored < w.need {
		return errUnavailable(fmt.Sprintf("write stored on %d of %d owners of partition %d, %d needed: %v",
			stored, w.ready, p.Index, w.need, failures))
	}
	if newest > p.Version {
		r.reachNewOwners(p, w.rec, newest)
	}
	return nil
}

// sendAll queues rec for each of p's other owners; res, if not nil,
// receives one result from each.
func (r *replicator) sendAll(p *clusterkit.Partition, rec store.Record, res chan<- repResult) {
	now := time.Now()
	for _, ids := range [][]string{p.ReplicaNodes, p.JoiningNodes} {
		for _, id := range ids {
			r.enqueue(id, &repItem{rec: rec, sent: now, res: res})
		}
	}
}

// reachNewOwners is called when an owner answered with a newer map than
// the one the write was sent with: the partition may have gained an owner
// the write did not reach, and a joining owner copying the partition must
// see every write made meanwhile. It runs on the server's context, not the
// request's: the write is stored by a majority already, and a client going
// away must not keep it from an owner. It waits briefly for this node's map to
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
	r.sendAll(p, rec, nil)
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
	size := it.size()
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
	if it.res == nil && (pr.q.len() >= maxQueue || pr.q.bytes+size > maxQueueBytes) {
		pr.mu.Unlock()
		r.finish(it, id, repResult{err: errQueueFull}, released)
		return
	}
	r.s.m.replPending.Inc()
	if pr.q.push(it) {
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
		pr = newPeer(r, node.ID, node.IP)
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
		queued := pr.q.drain()
		waiters := takeWaiters(queued)
		pr.mu.Unlock()
		for i, it := range queued {
			r.finish(it, pr.id, repResult{err: errClosing}, waiters[i])
		}
		r.s.m.replPending.Sub(float64(len(queued)))
	}
	r.wg.Wait()
}
