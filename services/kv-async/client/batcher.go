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

	ckclient "clusterkit.dev/clusterkit/client"
	"clusterkit.dev/clusterkit/wire"
	"clusterkit.dev/services/kit/kvclient"
	"clusterkit.dev/services/kv-async/internal/batch"
)

// The client's writes to one primary travel in batches (POST /kv/batch):
// at most inflight batches per node are in flight, and the writes that
// queue meanwhile leave together in the next one. A lone write leaves at
// once, so batching adds no wait; under load, concurrent writes share a
// round trip and the primary logs them as one entry.
const (
	// inflight bounds the batches in flight to one node. One gathers
	// the most writes per batch, and so costs the least CPU per write;
	// a write waits at most for the batch before its own.
	inflight = 1
	// maxBatchOps bounds the writes of one batch.
	maxBatchOps = 256
	// maxBatchBytes bounds a batch's keys and values; one larger write
	// travels alone.
	maxBatchBytes = 4 << 20
)

// errClosed is returned by calls on a closed client.
var errClosed = errors.New("kv-async: client closed")

// nodeQueue is the queue of writes to one node.
type nodeQueue struct {
	c    *Client
	addr string

	mu     sync.Mutex
	queue  []*call
	active int // batches in flight
}

// call is one write and, once done is signalled, its outcome.
type call struct {
	op         batch.Op
	mapVersion uint64
	done       chan callResult
}

// size is what cl adds to a batch's keys and values.
func (cl *call) size() int { return len(cl.op.Key) + len(cl.op.Value) }

type callResult struct {
	res         batch.Result
	nodeVersion uint64 // the answering node's map version
	err         error  // the batch failed as a whole
}

// queue returns the write queue of the node at addr.
func (c *Client) queue(addr string) *nodeQueue {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.queues[addr]
	if q == nil {
		q = &nodeQueue{c: c, addr: addr}
		c.queues[addr] = q
	}
	return q
}

// write sends op to the node of r's primary with the next batch and turns
// its result into an error as ckclient.Check turns an answer: a
// *ckclient.NotOwnerError for 421, a *ckclient.StatusError for any other
// failure.
func (c *Client) write(ctx context.Context, r ckclient.Route, op batch.Op) (batch.Result, error) {
	addr := r.Primary.IP
	res, nodeVersion, err := c.queue(addr).do(ctx, op, r.MapVersion)
	if err != nil {
		return res, err
	}
	switch res.Code {
	case http.StatusOK:
		return res, nil
	case wire.StatusNotOwner:
		return res, &ckclient.NotOwnerError{Addr: addr, MapVersion: nodeVersion,
			Body: wire.NotOwnerBody{Error: res.Message, MapVersion: nodeVersion}}
	}
	return res, &ckclient.StatusError{Addr: addr, Code: res.Code, Message: res.Message}
}

// do queues op and waits for its result, or for ctx. A result that
// arrives after ctx is done is dropped.
func (q *nodeQueue) do(ctx context.Context, op batch.Op, mapVersion uint64) (batch.Result, uint64, error) {
	cl := &call{op: op, mapVersion: mapVersion, done: make(chan callResult, 1)}
	c := q.c
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return batch.Result{}, 0, errClosed
	}
	q.mu.Lock()
	q.queue = append(q.queue, cl)
	start := q.active < inflight
	if start {
		q.active++
		c.wg.Add(1)
	}
	q.mu.Unlock()
	c.mu.Unlock()
	if start {
		go q.run()
	}
	select {
	case res := <-cl.done:
		return res.res, res.nodeVersion, res.err
	case <-ctx.Done():
		return batch.Result{}, 0, ctx.Err()
	}
}

// run sends the queue in batches until it is empty.
func (q *nodeQueue) run() {
	defer q.c.wg.Done()
	var buf []byte
	var ops []batch.Op
	for {
		// Let callers woken by the previous answer queue their next
		// write: it then leaves in this batch rather than alone.
		runtime.Gosched()
		q.mu.Lock()
		if len(q.queue) == 0 {
			q.active--
			q.mu.Unlock()
			return
		}
		calls := kvclient.TakeBatch(&q.queue, maxBatchOps, maxBatchBytes, (*call).size)
		q.mu.Unlock()

		ops = ops[:0]
		var mapVersion uint64
		for _, cl := range calls {
			ops = append(ops, cl.op)
			mapVersion = max(mapVersion, cl.mapVersion)
		}
		var results []batch.Result
		var nodeVersion uint64
		var err error
		buf, results, nodeVersion, err = q.post(buf, ops, mapVersion)
		for i, cl := range calls {
			if err != nil {
				cl.done <- callResult{err: err}
				continue
			}
			cl.done <- callResult{res: results[i], nodeVersion: nodeVersion}
		}
	}
}

// post sends one batch, within the call timeout, and returns its results
// and the node's map version. buf is reused for the request.
func (q *nodeQueue) post(buf []byte, ops []batch.Op, mapVersion uint64) ([]byte, []batch.Result, uint64, error) {
	buf = batch.AppendRequest(buf[:0], ops)
	ctx, cancel := context.WithTimeout(q.c.bg, q.c.callTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, q.c.scheme+"://"+q.addr+"/kv/batch", bytes.NewReader(buf))
	if err != nil {
		return buf, nil, 0, err
	}
	req.Header["Content-Type"] = contentTypeOps
	req.Header[headerMapVersion] = []string{strconv.FormatUint(mapVersion, 10)}
	resp, err := q.c.hc.Do(req)
	if err != nil {
		return buf, nil, 0, fmt.Errorf("kv-async: batch of %d writes to %s, which may have been applied: %w", len(ops), q.addr, err)
	}
	defer func() {
		// Read to the end, so that the connection goes back to the pool.
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}()
	if err := ckclient.Check(resp); err != nil {
		return buf, nil, 0, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(len(ops))*(batch.MaxKey+32)))
	if err != nil {
		return buf, nil, 0, fmt.Errorf("kv-async: answer of %s: %w", q.addr, err)
	}
	results, err := batch.DecodeAnswer(body, len(ops))
	if err != nil {
		return buf, nil, 0, fmt.Errorf("kv-async: answer of %s: %w", q.addr, err)
	}
	return buf, results, ckclient.MapVersion(resp), nil
}

// Header values of batch requests (net/http only reads them).
var (
	contentTypeOps   = []string{batch.ContentType}
	headerMapVersion = http.CanonicalHeaderKey(wire.HeaderMapVersion)
)
