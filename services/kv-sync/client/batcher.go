package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	ckclient "clusterkit.dev/clusterkit/client"
	"clusterkit.dev/clusterkit/wire"
	"clusterkit.dev/services/kit/kvclient"
	"clusterkit.dev/services/kv-sync/internal/batch"
)

// The client's replica requests to one node travel in batches (POST
// /kv/batch): one or two batch requests per node are in flight, and the
// requests that queue meanwhile leave together in the next one. Under
// load, the concurrent operations of a client share round trips, and the
// node makes a batch's writes durable with one fsync; a lone request
// leaves at once. Reads and writes queue apart, so that reads never wait behind
// writes waiting for a disk.
//
// A node that stops answering (paused, cut off, or dead behind an address
// that drops packets) must hold up nothing but its own requests. Each
// batch request has the call timeout (WithCallTimeout); once one gets no
// answer, the node is down: its queued requests fail at once, and so do
// new ones, except that one batch at a time, at most every probeInterval,
// still goes out to find out whether it is back. The first answer makes it
// up again. The queue of a node that is up but slower than the others is
// bounded too (maxQueuedOps, maxQueuedBytes): a request beyond fails at
// once. A quorum does not wait for the failures: it counts the answers of
// the other owners.
const (
	maxBatchOps = 512
	// maxQueuedOps and maxQueuedBytes bound the requests queued for one
	// node, of one kind: far more than a batch, so that only a node far
	// behind the others reaches them.
	maxQueuedOps   = 8 * maxBatchOps
	maxQueuedBytes = 64 << 20
	// probeInterval is how often a node that is down gets a batch.
	probeInterval = 100 * time.Millisecond
)

// inflight bounds the batch requests of one kind in flight to one node.
// Reads are answered at once, so two in flight gather the most per batch.
// A write batch waits for the node's fsync: one in flight lets the writes
// queued meanwhile share the next batch, and its fsync, where more in
// flight would split them into more requests (each a round trip and CPU
// on both sides) and more fsyncs.
func inflight(kind byte) int {
	if kind == batch.OpWrite {
		return 1
	}
	return 2
}

// Errors of one replica request; an operation wraps them in ErrNoQuorum
// when too few owners answered.
var (
	// errUnavailable is a node's answer that it cannot serve the request
	// now.
	errUnavailable = errors.New("kvsync: node unavailable for this key")
	// errNotAnswering fails the requests to a node whose last batch got no
	// answer.
	errNotAnswering = errors.New("kvsync: node not answering")
	// errBacklog fails a request to a node that has too many queued.
	errBacklog = errors.New("kvsync: too many requests queued for node")
)

// peer is what the client knows of one node's health; the node's queues
// share it.
type peer struct {
	mu sync.Mutex
	// down is the failure of the node's last batch, nil while it answers.
	down error
	// probing is set while a batch goes to the node that is down;
	// nextProbe is the earliest time of the next one.
	probing   bool
	nextProbe time.Time
}

// admit reports whether a request may go to the node now: always while it
// is up; when it is down, as a probe, if none is in flight and the last
// one is probeInterval old. Otherwise it returns the error to fail the
// request with.
func (p *peer) admit(addr string, now time.Time) (probe bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.down == nil:
		return false, nil
	case p.probing || now.Before(p.nextProbe):
		return false, fmt.Errorf("%w: %s: %w", errNotAnswering, addr, p.down)
	}
	p.probing = true
	return true, nil
}

// isDown reports whether the node is down.
func (p *peer) isDown() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.down != nil
}

// report records the outcome of a batch: an answer makes the node up; no
// answer (noAnswer is its error) makes it down.
func (p *peer) report(noAnswer error, probe bool, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if probe {
		p.probing = false
	}
	p.down = noAnswer
	if noAnswer != nil {
		p.nextProbe = now.Add(probeInterval)
	}
}

// nodeQueue is the queue of replica requests of one kind to one node.
type nodeQueue struct {
	c    *Client
	addr string
	max  int // batch requests in flight
	peer *peer

	mu     sync.Mutex
	queue  []*call
	bytes  int // of the keys and values in queue
	active int
}

// call is one replica request. Its answer goes to done, tagged with tag,
// which tells the caller's calls sharing done apart; done must have room
// for it (the sender never blocks).
type call struct {
	op         batch.Op
	mapVersion uint64
	tag        int
	done       chan<- callResult
	// track, if not nil, follows a write's copies for Client.Lag.
	track *writeTrack
	// probe is set on the request that may go to a node that is down.
	probe bool
}

// size is what the call holds in memory while queued.
func (cl *call) size() int { return len(cl.op.Key) + len(cl.op.Value) }

// fail answers cl with err.
func (cl *call) fail(err error) {
	cl.done <- callResult{tag: cl.tag, err: err}
	if cl.track != nil {
		cl.track.answer(cl.tag, err)
	}
}

type callResult struct {
	tag int
	res batch.Result
	// nodeVersion is the map version of the node that answered.
	nodeVersion uint64
	err         error
}

// queueKey names the queue of one kind of op to one node.
type queueKey struct {
	addr string
	kind byte
}

// node returns the queue of ops of kind to the node at addr.
func (c *Client) node(addr string, kind byte) *nodeQueue {
	c.queuesMu.Lock()
	defer c.queuesMu.Unlock()
	k := queueKey{addr, kind}
	q := c.queues[k]
	if q == nil {
		p := c.peers[addr]
		if p == nil {
			p = &peer{}
			c.peers[addr] = p
		}
		q = &nodeQueue{c: c, addr: addr, max: inflight(kind), peer: p}
		c.queues[k] = q
	}
	return q
}

// send queues cl for the node's next batch; its answer arrives on
// cl.done. It fails cl at once when the node is down (but for a probe) or
// its queue is full. The batch is bounded by the client's call timeout,
// not by the caller's context: a write goes on to the slowest owner after
// its caller returned. It is called only by an operation in progress (see
// Client.enter), which keeps the client open while the sender it may start
// runs.
func (q *nodeQueue) send(cl *call) {
	q.mu.Lock()
	if len(q.queue) >= maxQueuedOps || (q.bytes > 0 && q.bytes+cl.size() > maxQueuedBytes) {
		n := len(q.queue)
		q.mu.Unlock()
		cl.fail(fmt.Errorf("%w: %s has %d", errBacklog, q.addr, n))
		return
	}
	probe, err := q.peer.admit(q.addr, time.Now())
	if err != nil {
		q.mu.Unlock()
		cl.fail(err)
		return
	}
	cl.probe = probe
	q.queue = append(q.queue, cl)
	q.bytes += cl.size()
	if q.active < q.max {
		q.active++
		q.c.wg.Go(q.run)
	}
	q.mu.Unlock()
}

// run sends the queue in batches until it is empty. While the node is
// down, it sends only the probe and fails the rest.
func (q *nodeQueue) run() {
	var buf []byte
	for {
		// Let callers woken by the previous answer queue their next
		// request: it then leaves in this batch rather than alone.
		runtime.Gosched()
		q.mu.Lock()
		if len(q.queue) == 0 {
			q.active--
			q.mu.Unlock()
			return
		}
		calls := kvclient.TakeBatch(&q.queue, maxBatchOps, batch.MaxRequestBytes, (*call).size)
		for _, cl := range calls {
			q.bytes -= cl.size()
		}
		q.mu.Unlock()

		probe := slices.ContainsFunc(calls, func(cl *call) bool { return cl.probe })
		if q.peer.isDown() {
			// Queued before the node went down: fail all but the probe.
			calls = slices.DeleteFunc(calls, func(cl *call) bool {
				if !cl.probe {
					cl.fail(fmt.Errorf("%w: %s", errNotAnswering, q.addr))
				}
				return !cl.probe
			})
			if len(calls) == 0 {
				continue
			}
		}

		var results []batch.Result
		var nodeVersion uint64
		var err, noAnswer error
		buf, results, nodeVersion, err, noAnswer = q.post(buf, calls)
		if q.c.bg.Err() == nil {
			q.peer.report(noAnswer, probe, time.Now())
		}
		for i, cl := range calls {
			res := callResult{tag: cl.tag, err: err}
			if err == nil {
				res = callResult{tag: cl.tag, res: results[i], nodeVersion: nodeVersion,
					err: q.statusErr(results[i].Status, nodeVersion)}
			}
			cl.done <- res
			if cl.track != nil {
				cl.track.answer(cl.tag, res.err)
			}
		}
		// After a batch without an answer the node is down: the next turn
		// fails what queued meanwhile, but for a probe.
	}
}

// post sends one batch and returns its results and the node's map version.
// When the node did not answer (no connection, no answer within the call
// timeout, an answer cut short), it returns that error twice: as the
// batch's error and as noAnswer.
func (q *nodeQueue) post(buf []byte, calls []*call) (_ []byte, _ []batch.Result, nodeVersion uint64, err, noAnswer error) {
	buf = buf[:0]
	var mapVersion uint64
	for _, cl := range calls {
		buf = batch.AppendOp(buf, &cl.op)
		mapVersion = max(mapVersion, cl.mapVersion)
	}
	buf = batch.AppendEnd(buf, len(calls))
	ctx, cancel := context.WithTimeout(q.c.bg, q.c.callTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, q.c.scheme+"://"+q.addr+"/kv/batch", bytes.NewReader(buf))
	if err != nil {
		return buf, nil, 0, err, nil
	}
	if q.c.token != "" {
		req.Header.Set("Authorization", "Bearer "+q.c.token)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set(wire.HeaderMapVersion, strconv.FormatUint(mapVersion, 10))
	resp, err := q.c.hc.Do(req)
	if err != nil {
		return buf, nil, 0, err, err
	}
	defer drain(resp.Body)
	if err := ckclient.Check(resp); err != nil {
		return buf, nil, 0, err, nil
	}
	var answer bytes.Buffer
	if n := resp.ContentLength; n > 0 && n <= int64(len(calls))*(batch.MaxKey+batch.MaxValue) {
		answer.Grow(int(n) + bytes.MinRead)
	}
	_, err = answer.ReadFrom(io.LimitReader(resp.Body, int64(len(calls))*(batch.MaxKey+batch.MaxValue)))
	body := answer.Bytes()
	if err != nil {
		err = fmt.Errorf("kvsync: answer of %s: %w", q.addr, err)
		return buf, nil, 0, err, err
	}
	results, err := batch.ReadResults(body, len(calls))
	if err != nil {
		return buf, nil, 0, fmt.Errorf("kvsync: answer of %s: %w", q.addr, err), nil
	}
	return buf, results, ckclient.MapVersion(resp), nil, nil
}

// statusErr turns a result's status into the error of its call.
func (q *nodeQueue) statusErr(status byte, nodeVersion uint64) error {
	switch status {
	case batch.StatusOK, batch.StatusFound, batch.StatusAbsent:
		return nil
	case batch.StatusNotOwner:
		return &ckclient.NotOwnerError{Addr: q.addr, MapVersion: nodeVersion,
			Body: wire.NotOwnerBody{Error: "not an owner of the key's partition", MapVersion: nodeVersion}}
	case batch.StatusUnavailable:
		return fmt.Errorf("%w: %s", errUnavailable, q.addr)
	}
	return fmt.Errorf("kvsync: %s refused the request (status %d)", q.addr, status)
}
