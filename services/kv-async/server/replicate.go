package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"clusterkit.dev/clusterkit"
	knode "clusterkit.dev/services/kit/node"
	"clusterkit.dev/services/kv-async/internal/store"
)

// Replication, primary side. For every partition this node is primary of,
// the node ships the records of its index to the partition's other owners
// (replicas, and joining owners, which must not miss a write while they
// copy). There is one shipper goroutine per peer; a request to a peer
// carries a section per partition, each the next stretch of the index
// after the peer's cursor, so writes reach a peer in the order the primary
// accepted them. The peer persists its cursor with the records it applies,
// so after any fault (a failed request, a peer or primary restart) the
// shipper asks the peer for its cursor (a probe) and resumes from there:
// nothing the primary acknowledged is skipped, and nothing is kept in
// memory only.

// Retry pauses of a shipper whose peer fails: doubled after each failed
// request, reset by a success.
const (
	minRetryPause = 50 * time.Millisecond
	maxRetryPause = 2 * time.Second
)

// Pauses before a partition section refused by the peer is sent again.
const (
	notReadyPause = 100 * time.Millisecond // the peer is copying it
	refusedPause  = 500 * time.Millisecond // the peer's map differs from ours
)

// maxBatchAnswer bounds the answer to a batch (a few bytes per section).
const maxBatchAnswer = 1 << 20

// maxLagCount caps the records counted per partition for the lag.
const maxLagCount = 100_000

// target is a partition to ship to a peer, with its epoch in our map.
type target struct {
	partition int
	epoch     uint64
}

type replicator struct {
	s        *Server
	mu       sync.Mutex
	shippers map[string]*shipper
	// unreplicated holds, per partition this node is primary of, when the
	// oldest write no ready replica has acknowledged arrived (Unix ns), 0
	// when there is none; watchLag keeps it (and makes it once the
	// partition count is known), admit reads it.
	unreplicated atomic.Pointer[[]atomic.Int64]
	// active is the current shippers, for notify on the write path.
	active atomic.Pointer[[]*shipper]
	wg     sync.WaitGroup
}

func newReplicator(s *Server) *replicator {
	r := &replicator{s: s, shippers: map[string]*shipper{}}
	r.active.Store(&[]*shipper{})
	return r
}

// run keeps one shipper per peer of the current map until ctx is done.
func (r *replicator) run(ctx context.Context) {
	defer r.stopAll()
	first := true
	for {
		v := r.s.ck.Version()
		if r.s.ck.Partitions() != nil {
			r.reconcile(ctx)
			if first {
				first = false
				r.s.dropUnowned()
			}
		}
		if err := r.s.ck.WaitForMap(ctx, v+1); err != nil {
			return
		}
	}
}

// targets returns, per peer, the partitions this node must ship to it.
func (r *replicator) targets() map[string][]target {
	out := map[string][]target{}
	self := r.s.self
	for _, p := range r.s.ck.Partitions() {
		if p.PrimaryNode != self {
			continue
		}
		for _, ids := range [][]string{p.ReplicaNodes, p.JoiningNodes} {
			for _, id := range ids {
				if id != self {
					out[id] = append(out[id], target{partition: p.Index, epoch: p.Epoch})
				}
			}
		}
	}
	return out
}

func (r *replicator) reconcile(ctx context.Context) {
	peers := r.targets()
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range peers {
		if r.shippers[id] == nil {
			r.s.metrics.addPeer(id)
			sctx, cancel := context.WithCancel(ctx)
			sh := &shipper{r: r, peer: id, wake: make(chan struct{}, 1), cancel: cancel, parts: map[int]*partState{}}
			r.shippers[id] = sh
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				sh.run(sctx)
			}()
		}
	}
	for id, sh := range r.shippers {
		if _, ok := peers[id]; !ok {
			sh.cancel()
			delete(r.shippers, id)
		}
	}
	list := make([]*shipper, 0, len(r.shippers))
	for _, sh := range r.shippers {
		list = append(list, sh)
		sh.wakeUp()
	}
	r.active.Store(&list)
}

func (r *replicator) stopAll() {
	r.mu.Lock()
	for id, sh := range r.shippers {
		sh.cancel()
		delete(r.shippers, id)
	}
	r.active.Store(&[]*shipper{})
	r.mu.Unlock()
	r.wg.Wait()
}

// notify tells the shippers that a write was made or fsynced.
func (r *replicator) notify() {
	for _, sh := range *r.active.Load() {
		sh.wakeUp()
	}
}

// cursor returns what this node knows of peer's cursor for partition p.
func (r *replicator) cursor(peer string, p int) (seq uint64, known bool) {
	r.mu.Lock()
	sh := r.shippers[peer]
	r.mu.Unlock()
	if sh == nil {
		return 0, false
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if st := sh.parts[p]; st != nil && st.known {
		return st.cursor, true
	}
	return 0, false
}

// shipper ships to one peer.
type shipper struct {
	r      *replicator
	peer   string
	wake   chan struct{}
	cancel context.CancelFunc

	buf []byte // encoding buffer of batches, reused by the one goroutine

	mu    sync.Mutex
	parts map[int]*partState
	next  int // partition to start the next batch with, for fairness
}

// partState is a shipper's knowledge of one partition on its peer.
type partState struct {
	epoch   uint64
	since   time.Time // when the shipper began to ship the partition
	known   bool      // cursor was confirmed by the peer
	cursor  uint64    // the peer holds our index up to here
	retryAt time.Time
}

func (sh *shipper) wakeUp() {
	select {
	case sh.wake <- struct{}{}:
	default:
	}
}

// run ships to the peer until ctx is done. A round starts at most every
// ReplicationInterval, so that writes gather into larger batches, except
// while the previous batch was full.
func (sh *shipper) run(ctx context.Context) {
	s := sh.r.s
	pause := time.Duration(0)
	failing := false
	var next time.Time // earliest start of the next round
	for {
		if !knode.Sleep(ctx, time.Until(next)) {
			return
		}
		start := time.Now()
		next = start.Add(s.cfg.ReplicationInterval)
		sent, full, retryAt, err := sh.round(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.metrics.batches.WithLabelValues(sh.peer, outcomeFailed).Inc()
			if !failing {
				s.log.Warn("replication to peer failing, retrying", "peer", sh.peer, "err", err)
				failing = true
			}
			pause = min(max(2*pause, minRetryPause), maxRetryPause)
			next = time.Now().Add(pause)
			continue
		}
		if failing {
			s.log.Info("replication to peer resumed", "peer", sh.peer)
			failing = false
		}
		pause = 0
		if full {
			next = time.Time{}
		}
		if sent {
			continue
		}
		idle := time.Second
		if !retryAt.IsZero() {
			idle = min(idle, max(time.Until(retryAt), time.Millisecond))
		}
		t := time.NewTimer(idle)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-sh.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// round sends one batch to the peer if anything is due. It reports
// whether it sent one and whether that one was full (more is waiting),
// and the earliest time a refused section is due again.
func (sh *shipper) round(ctx context.Context) (sent, full bool, retryAt time.Time, err error) {
	s := sh.r.s
	targets := sh.r.targets()[sh.peer]
	req := batchRequest{Sender: s.self, Inc: s.store.Incarnation(), MapVersion: s.ck.Version()}
	now := time.Now()

	sh.mu.Lock()
	order := sh.sync(targets)
	states := make(map[int]partState, len(order))
	for _, t := range order {
		states[t.partition] = *sh.parts[t.partition]
	}
	sh.mu.Unlock()

	records, bytesLeft := s.cfg.ReplicationBatch, s.cfg.ReplicationBatchBytes
	// Only fsynced changes are shipped: a replica never holds a change that
	// its primary could lose in a crash, and then number anew.
	upto := s.store.Synced()
	for _, t := range order {
		st := states[t.partition]
		if now.Before(st.retryAt) {
			if retryAt.IsZero() || st.retryAt.Before(retryAt) {
				retryAt = st.retryAt
			}
			continue
		}
		if !st.known {
			req.Sections = append(req.Sections, section{Partition: t.partition, Epoch: t.epoch, Probe: true})
			continue
		}
		if records <= 0 || bytesLeft <= 0 {
			continue
		}
		sec := section{Partition: t.partition, Epoch: t.epoch, From: st.cursor}
		err = s.store.Scan(t.partition, st.cursor, upto, true, func(e *store.Entry) bool {
			sec.Records = append(sec.Records, e.Record)
			sec.To = e.Position
			records--
			bytesLeft -= len(e.Record.Key) + len(e.Record.Value)
			return records > 0 && bytesLeft > 0
		})
		if err != nil {
			break
		}
		if len(sec.Records) > 0 {
			req.Sections = append(req.Sections, sec)
		}
	}
	if err != nil || len(req.Sections) == 0 {
		return false, false, retryAt, err
	}
	resp, err := sh.post(ctx, &req)
	if err != nil {
		return false, false, retryAt, err
	}
	s.metrics.batches.WithLabelValues(sh.peer, outcomeOK).Inc()
	sh.apply(&req, resp, upto)
	return true, records <= 0 || bytesLeft <= 0, retryAt, nil
}

// sync makes the shipper's partition states match targets and returns
// them in the order to serve them, rotating the start for fairness.
// sh.mu must be held.
func (sh *shipper) sync(targets []target) []target {
	keep := make(map[int]bool, len(targets))
	for _, t := range targets {
		keep[t.partition] = true
		st := sh.parts[t.partition]
		if st == nil {
			st = &partState{since: time.Now()}
			sh.parts[t.partition] = st
		}
		st.epoch = t.epoch
	}
	for p := range sh.parts {
		if !keep[p] {
			// The peer left the partition; if it comes back it may have
			// dropped its data, so its cursor must be asked again.
			delete(sh.parts, p)
		}
	}
	sort.Slice(targets, func(i, j int) bool { return targets[i].partition < targets[j].partition })
	if len(targets) == 0 {
		return nil
	}
	start := sh.next % len(targets)
	sh.next++
	return append(targets[start:len(targets):len(targets)], targets[:start]...)
}

// apply records the peer's answer. upto is this node's index head when the
// batch was made: a cursor beyond it is one this node never shipped (a
// forged batch moved it on the peer), and is not believed, so that the
// peer is not skipped from then on. The records of an applied section
// reached the peer, whose cursor is then at least the section's To; a
// probe answered beyond the head starts over from the beginning (the peer
// skips what it has).
func (sh *shipper) apply(req *batchRequest, resp *batchResponse, upto uint64) {
	s := sh.r.s
	sent := map[int]*section{}
	for i := range req.Sections {
		sent[req.Sections[i].Partition] = &req.Sections[i]
	}
	now := time.Now()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for _, res := range resp.Results {
		st, sec := sh.parts[res.Partition], sent[res.Partition]
		if st == nil || sec == nil {
			continue
		}
		cursor := res.Cursor
		if cursor > upto {
			s.log.Warn("peer's cursor is beyond this node's index: not believed", "peer", sh.peer,
				"partition", res.Partition, "cursor", cursor, "head", upto)
			cursor = 0
			if res.Status == statusApplied {
				cursor = sec.To
			}
		}
		switch res.Status {
		case statusApplied:
			st.known, st.cursor = true, cursor
			s.metrics.shipped.WithLabelValues(sh.peer).Add(float64(len(sec.Records)))
		case statusCursor, statusGap:
			st.known, st.cursor = true, cursor
		case statusNotReady:
			st.retryAt = now.Add(notReadyPause)
		case statusStale:
			s.log.Warn("peer refused replication: it has seen a newer epoch, this node is no longer primary",
				"peer", sh.peer, "partition", res.Partition, "epoch", sec.Epoch)
			st.retryAt = now.Add(refusedPause)
		case statusNotOwner:
			st.retryAt = now.Add(refusedPause)
		default:
			s.log.Error("peer refused replication", "peer", sh.peer, "partition", res.Partition, "status", res.Status, "err", res.Error)
			st.retryAt = now.Add(maxRetryPause)
		}
	}
}

// post sends a batch and decodes the answer, within ReplicationTimeout.
func (sh *shipper) post(ctx context.Context, req *batchRequest) (*batchResponse, error) {
	s := sh.r.s
	node := s.ck.Node(sh.peer)
	if node == nil {
		return nil, fmt.Errorf("peer %s is not a member", sh.peer)
	}
	sh.buf = appendBatchRequest(sh.buf[:0], req)
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ReplicationTimeout)
	defer cancel()
	hreq, err := knode.NewRequest(ctx, s.ck, node, http.MethodPost, pathReplicate, bytes.NewReader(sh.buf))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", contentTypeBatch)
	// The map the batch was judged by, which the peer waits for.
	hreq.Header.Set(clusterkit.HeaderMapVersion, strconv.FormatUint(req.MapVersion, 10))
	hresp, err := s.peers.Do(hreq)
	if err != nil {
		return nil, err
	}
	defer func() {
		_, _ = io.Copy(io.Discard, hresp.Body) // lets the connection be reused
		hresp.Body.Close()
	}()
	if hresp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(hresp.Body, 1024))
		return nil, fmt.Errorf("%s answered %s: %s", node.IP, hresp.Status, bytes.TrimSpace(b))
	}
	b, err := io.ReadAll(io.LimitReader(hresp.Body, maxBatchAnswer))
	if err != nil {
		return nil, fmt.Errorf("read answer of %s: %w", node.IP, err)
	}
	resp, err := decodeBatchResponse(b)
	if err != nil {
		return nil, fmt.Errorf("answer of %s: %w", node.IP, err)
	}
	return resp, nil
}

// PeerLag is how far one peer is behind this node, as primary.
type PeerLag struct {
	Peer string `json:"peer"`
	// Operations counts the records the peer has not acknowledged.
	Operations int `json:"operations"`
	// Seconds is the age of the oldest of them (0 when none).
	Seconds float64 `json:"seconds"`
	// Partitions lists the partitions the peer lags in, or whose cursor
	// is not yet known.
	Partitions []PartitionLag `json:"partitions"`
}

// PartitionLag is a peer's lag in one partition.
type PartitionLag struct {
	Partition int `json:"partition"`
	// Cursor is the peer's position in this node's index for the
	// partition; Known is false until the peer confirmed it.
	Cursor     uint64  `json:"cursor"`
	Known      bool    `json:"known"`
	Head       uint64  `json:"head"`
	Operations int     `json:"operations"`
	Seconds    float64 `json:"seconds"`
}

// lag computes every peer's lag from the current map and the shippers'
// cursors. A peer whose cursor is not yet known counts as holding nothing.
func (r *replicator) lag() []PeerLag {
	targets := r.targets()
	peers := make([]string, 0, len(targets))
	for id := range targets {
		peers = append(peers, id)
	}
	slices.Sort(peers)
	out := make([]PeerLag, 0, len(peers))
	now := time.Now()
	for _, id := range peers {
		pl := PeerLag{Peer: id, Partitions: []PartitionLag{}}
		for _, t := range targets[id] {
			cur, known := r.cursor(id, t.partition)
			l := PartitionLag{Partition: t.partition, Cursor: cur, Known: known}
			_ = r.s.store.Scan(t.partition, cur, store.All, false, func(e *store.Entry) bool {
				if l.Operations == 0 {
					l.Seconds = max(now.Sub(time.UnixMilli(e.At)).Seconds(), 0)
				}
				l.Operations++
				return l.Operations < maxLagCount
			})
			l.Head, _ = r.s.store.Head(t.partition)
			pl.Operations += l.Operations
			pl.Seconds = max(pl.Seconds, l.Seconds)
			if l.Operations > 0 || !l.Known {
				pl.Partitions = append(pl.Partitions, l)
			}
		}
		sort.Slice(pl.Partitions, func(i, j int) bool { return pl.Partitions[i].Partition < pl.Partitions[j].Partition })
		out = append(out, pl)
	}
	return out
}

// lagCheckPeriod is how often watchLag looks at the replicas' cursors, at
// most: a quarter of MaxReplicationLag when that is shorter.
const lagCheckPeriod = 100 * time.Millisecond

// checkpoint is a partition's index head at the latest time it was seen:
// every write numbered after head was accepted after at.
type checkpoint struct {
	at   time.Time
	head uint64
}

// promotion is when watchLag first saw this node primary of a partition
// at an epoch, and the partition's head then: the entries up to head came
// from elsewhere (a copy, the previous primary), not from writes this node
// acknowledged.
type promotion struct {
	epoch uint64
	checkpoint
}

// watchLag keeps unreplicated up to date until ctx is done, logging when a
// partition starts and stops refusing writes.
func (r *replicator) watchLag(ctx context.Context) {
	bound := r.s.cfg.MaxReplicationLag
	t := time.NewTicker(min(lagCheckPeriod, bound/4))
	defer t.Stop()
	refusing := map[int]bool{}
	var cps [][]checkpoint
	var proms []promotion
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n := r.s.ck.PartitionCount()
		if n == 0 || r.s.ck.Partitions() == nil {
			continue
		}
		un := r.unreplicated.Load()
		if un == nil || len(*un) != n {
			fresh := make([]atomic.Int64, n)
			un = &fresh
			r.unreplicated.Store(un)
			cps = make([][]checkpoint, n)
			proms = make([]promotion, n)
		}
		for p := range *un {
			now := time.Now() // before the head is read: see checkpoint
			head, err := r.s.store.Head(p)
			if err != nil {
				return // the store is closed
			}
			// One checkpoint per head, at the latest time it was seen;
			// those of the last 4 bounds, and one older.
			if l := len(cps[p]); l > 0 && cps[p][l-1].head == head {
				cps[p][l-1].at = now
			} else {
				cps[p] = append(cps[p], checkpoint{at: now, head: head})
			}
			drop := 0
			for drop < len(cps[p])-1 && now.Sub(cps[p][drop+1].at) > 4*bound {
				drop++
			}
			cps[p] = cps[p][drop:]

			if part := r.s.partition(p); part != nil && part.PrimaryNode == r.s.self && proms[p].epoch != part.Epoch {
				proms[p] = promotion{epoch: part.Epoch, checkpoint: checkpoint{at: now, head: head}}
			}
			oldest := r.oldestUnreplicated(p, head, cps[p], proms[p])
			(*un)[p].Store(oldest)
			behind := oldest != 0 && now.Sub(time.Unix(0, oldest)) > bound
			if behind != refusing[p] {
				if behind {
					r.s.log.Warn("no replica has the partition's recent writes: refusing writes",
						"partition", p, "bound", bound, "behind", now.Sub(time.Unix(0, oldest)))
				} else {
					r.s.log.Info("a replica caught up: taking writes again", "partition", p)
				}
				refusing[p] = behind
			}
		}
	}
}

// oldestUnreplicated returns a time (Unix ns) before which every write of
// partition p that this node acknowledged as primary is on some ready
// replica, as far as this node knows, or 0 if every such write is, if this
// node is not p's primary, or if p has no ready replica. head is p's index
// head, cps its recent checkpoints, oldest first, and prom this node's
// promotion to primary of p: the writes it acknowledged are numbered after
// prom.head, and were accepted after prom.at. A write numbered after a
// replica's cursor was accepted after the last checkpoint whose head the
// cursor has reached. A replica whose cursor the shipper has not confirmed
// yet counts as missing every write since the shipper began to ship p to
// it.
func (r *replicator) oldestUnreplicated(p int, head uint64, cps []checkpoint, prom promotion) int64 {
	part := r.s.partition(p)
	if part == nil || part.PrimaryNode != r.s.self || prom.epoch != part.Epoch || len(part.ReplicaNodes) == 0 || head <= prom.head {
		return 0
	}
	best := int64(0) // the replica furthest ahead bounds the loss
	for _, id := range part.ReplicaNodes {
		r.mu.Lock()
		sh := r.shippers[id]
		r.mu.Unlock()
		if sh == nil {
			return 0 // being set up: nothing was shipped to it yet
		}
		sh.mu.Lock()
		st := sh.parts[p]
		var cur partState
		if st != nil {
			cur = *st
		}
		sh.mu.Unlock()
		since := prom.at
		switch reached := max(cur.cursor, prom.head); {
		case st == nil:
			return 0 // not shipped to yet, as above
		case !cur.known:
			since = later(since, cur.since)
		case reached >= head:
			return 0 // this replica has every write
		default:
			for i := len(cps) - 1; i >= 0; i-- {
				if cps[i].head <= reached {
					since = later(since, cps[i].at)
					break
				}
			}
		}
		best = max(best, since.UnixNano())
	}
	return best
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// admit returns a 503 error while partition p's replication is behind by
// more than MaxReplicationLag: no ready replica has acknowledged a write
// this node accepted longer ago than that.
func (r *replicator) admit(p int) error {
	bound := r.s.cfg.MaxReplicationLag
	un := r.unreplicated.Load()
	if bound <= 0 || un == nil || p >= len(*un) {
		return nil
	}
	oldest := (*un)[p].Load()
	if oldest == 0 {
		return nil
	}
	if behind := time.Since(time.Unix(0, oldest)); behind > bound {
		return errorf(http.StatusServiceUnavailable,
			"partition %d: no replica has acknowledged this primary's writes of the last %v (bound %v): writes resume once one catches up",
			p, behind.Round(time.Millisecond), bound)
	}
	return nil
}
