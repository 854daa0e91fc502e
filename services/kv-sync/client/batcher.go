package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"sync"

	"clusterkit.dev/clusterkit"
	ckclient "clusterkit.dev/clusterkit/client"
	"clusterkit.dev/services/kv-sync/internal/batch"
)

// The client's replica requests to one node travel in batches (POST
// /kv/batch): one or two batch requests per node are in flight, and the
// requests that queue meanwhile leave together in the next one. Under
// load, the concurrent operations of a client share round trips, and the
// node makes a batch's writes durable with one fsync; a lone request
// leaves at once. Reads and writes queue apart, so that reads never wait behind
// writes waiting for a disk.
const (
	maxBatchOps = 512
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

// errUnavailable is a node's answer that it cannot serve the request now.
var errUnavailable = errors.New("kvsync: node unavailable for this key")

// nodeQueue is the queue of replica requests to one node.
type nodeQueue struct {
	c    *Client
	addr string
	max  int // batch requests in flight

	mu     sync.Mutex
	queue  []*call
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
		q = &nodeQueue{c: c, addr: addr, max: inflight(kind)}
		c.queues[k] = q
	}
	return q
}

// send queues cl for the node's next batch; its answer arrives on
// cl.done. The batch is bounded by the client's timeout, not by the
// caller's context: a write goes on to the slowest owner after its caller
// returned. It is called only by an operation in progress (see
// Client.enter), which keeps the client open while the sender it may start
// runs.
func (q *nodeQueue) send(cl *call) {
	q.mu.Lock()
	q.queue = append(q.queue, cl)
	if q.active < q.max {
		q.active++
		q.c.wg.Go(q.run)
	}
	q.mu.Unlock()
}

// run sends the queue in batches until it is empty.
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
		n := min(len(q.queue), maxBatchOps)
		calls := make([]*call, n)
		copy(calls, q.queue)
		rest := copy(q.queue, q.queue[n:])
		clear(q.queue[rest:])
		q.queue = q.queue[:rest]
		q.mu.Unlock()

		var results []batch.Result
		var nodeVersion uint64
		var err error
		buf, results, nodeVersion, err = q.post(buf, calls)
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
	}
}

// post sends one batch and returns its results and the node's map version.
func (q *nodeQueue) post(buf []byte, calls []*call) ([]byte, []batch.Result, uint64, error) {
	buf = buf[:0]
	var mapVersion uint64
	for _, cl := range calls {
		buf = batch.AppendOp(buf, &cl.op)
		mapVersion = max(mapVersion, cl.mapVersion)
	}
	buf = batch.AppendEnd(buf, len(calls))
	ctx, cancel := context.WithTimeout(q.c.bg, q.c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+q.addr+"/kv/batch", bytes.NewReader(buf))
	if err != nil {
		return buf, nil, 0, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set(clusterkit.HeaderMapVersion, strconv.FormatUint(mapVersion, 10))
	resp, err := q.c.hc.Do(req)
	if err != nil {
		return buf, nil, 0, err
	}
	defer drain(resp.Body)
	if err := ckclient.Check(resp); err != nil {
		return buf, nil, 0, err
	}
	var answer bytes.Buffer
	if n := resp.ContentLength; n > 0 && n <= int64(len(calls))*(batch.MaxKey+batch.MaxValue) {
		answer.Grow(int(n) + bytes.MinRead)
	}
	_, err = answer.ReadFrom(io.LimitReader(resp.Body, int64(len(calls))*(batch.MaxKey+batch.MaxValue)))
	body := answer.Bytes()
	if err != nil {
		return buf, nil, 0, fmt.Errorf("kvsync: answer of %s: %w", q.addr, err)
	}
	results, err := batch.ReadResults(body, len(calls))
	if err != nil {
		return buf, nil, 0, fmt.Errorf("kvsync: answer of %s: %w", q.addr, err)
	}
	return buf, results, ckclient.MapVersion(resp), nil
}

// statusErr turns a result's status into the error of its call.
func (q *nodeQueue) statusErr(status byte, nodeVersion uint64) error {
	switch status {
	case batch.StatusOK, batch.StatusFound, batch.StatusAbsent:
		return nil
	case batch.StatusNotOwner:
		return &ckclient.NotOwnerError{Addr: q.addr, MapVersion: nodeVersion,
			Body: clusterkit.NotOwnerBody{Error: "not an owner of the key's partition", MapVersion: nodeVersion}}
	case batch.StatusUnavailable:
		return fmt.Errorf("%w: %s", errUnavailable, q.addr)
	}
	return fmt.Errorf("kvsync: %s refused the request (status %d)", q.addr, status)
}
