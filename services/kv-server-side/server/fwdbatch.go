package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kit/stream"
	"github.com/prometheus/client_golang/prometheus"
)

// Forwarded ops travel to the primary in batches (POST /kv/internal/forward): one
// batch of reads and two of writes per primary are in flight, and the ops
// that queue meanwhile leave together in the next one, so under load many
// client requests share one round trip between two nodes. Reads and writes queue
// apart: reads are answered at once, while writes wait for replication.
const (
	fwdReadsInflight  = 1
	fwdWritesInflight = 2
	fwdMaxBatch       = 256
	fwdMaxOps         = 4096
	// fwdMaxBatchBytes bounds the keys and values of a batch, but for its
	// last op: a batch stays within the receiver's maxBatchBody.
	fwdMaxBatchBytes = 4 << 20
)

// A primary that stops answering (paused, cut off) must not hold every
// request forwarded to it for ForwardTimeout. When a batch has not answered
// within ForwardProbeTimeout, or failed, the forwarder probes the primary
// with an empty batch of the same bound. If the probe gets no answer, the
// primary is not answering: the ops waiting for it are released with
// errNotAnswering, and later ops to it fail at once with errNotSent, until
// a probe, sent every probeInterval, answers. The probes stop, and the
// primary is trusted again, once no op was sent to it for fwdForget.
const fwdForget = 10 * time.Second

var (
	// errNotAnswering ends an op sent to a primary that stopped answering:
	// it may or may not have been applied.
	errNotAnswering = errors.New("primary not answering")
	// errNotSent fails an op to a primary known not to answer: it was not
	// sent.
	errNotSent = errors.New("primary not answering; not sent")
)

// forwarder sends this node's forwarded ops to primaries.
type forwarder struct {
	s  *Server
	wg sync.WaitGroup

	mu     sync.Mutex
	closed bool
	queues map[fwdKey]*fwdQueue
	nodes  map[string]*fwdNode
}

// fwdNode is what the forwarder knows of one primary's health; its two
// queues share it.
type fwdNode struct {
	addr string

	mu sync.Mutex
	// calls are the ops sent or queued, not answered yet.
	calls   map[*fwdCall]struct{}
	probing bool
	// down is the failure of the last probe, nil while the node answers.
	down     error
	lastUsed time.Time
}

type fwdKey struct {
	addr   string
	writes bool
}

// fwdQueue is the queue of forwarded ops of one kind to one node.
type fwdQueue struct {
	f    *forwarder
	addr string
	// batchSize is kvss_forward_batch_ops of the queue's kind.
	batchSize prometheus.Observer

	mu sync.Mutex
	q  batchQueue[*fwdCall]
}

// fwdCall is one op on its way to its primary.
type fwdCall struct {
	op   op
	node *fwdNode
	done chan fwdResult
	once sync.Once
}

// size returns the bytes the call counts for in its queue.
func (c *fwdCall) size() int { return len(c.op.key) + len(c.op.value) }

// deliver sends the call's result, once: a call released because its
// primary stopped answering ignores the batch's late outcome.
func (c *fwdCall) deliver(res fwdResult) {
	c.once.Do(func() {
		c.node.mu.Lock()
		delete(c.node.calls, c)
		c.node.mu.Unlock()
		c.done <- res
	})
}

type fwdResult struct {
	rep reply
	err error
}

func newForwarder(s *Server) *forwarder {
	return &forwarder{s: s, queues: map[fwdKey]*fwdQueue{}, nodes: map[string]*fwdNode{}}
}

// send forwards o to node with the next batch and waits for the node's
// reply or ctx. It fails at once with errNotSent when node is not
// answering, and with errNotAnswering when it stops answering meanwhile.
func (f *forwarder) send(ctx context.Context, node *clusterkit.Node, o op) (reply, error) {
	k := fwdKey{addr: node.IP, writes: o.kind != opKindGet}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return reply{}, errClosing
	}
	fn := f.nodes[node.IP]
	if fn == nil {
		fn = &fwdNode{addr: node.IP, calls: map[*fwdCall]struct{}{}}
		f.nodes[node.IP] = fn
	}
	call := &fwdCall{op: o, node: fn, done: make(chan fwdResult, 1)}
	fn.mu.Lock()
	fn.lastUsed = time.Now()
	down := fn.down
	if down == nil {
		fn.calls[call] = struct{}{}
	}
	fn.mu.Unlock()
	if down != nil {
		f.mu.Unlock()
		return reply{}, fmt.Errorf("%w: %s: %w", errNotSent, node.IP, down)
	}
	q := f.queues[k]
	if q == nil {
		q = &fwdQueue{f: f, addr: node.IP, batchSize: f.s.m.fwdBatch.WithLabelValues(fwdRead),
			q: batchQueue[*fwdCall]{maxInflight: fwdReadsInflight, maxCount: fwdMaxBatch, maxBytes: fwdMaxBatchBytes, size: (*fwdCall).size}}
		if k.writes {
			q.q.maxInflight = fwdWritesInflight
			q.batchSize = f.s.m.fwdBatch.WithLabelValues(fwdWrite)
		}
		f.queues[k] = q
	}
	q.mu.Lock()
	if q.q.push(call) {
		f.wg.Add(1) // under f.mu: close cannot be waiting yet
		go q.run()
	}
	q.mu.Unlock()
	f.mu.Unlock()
	select {
	case res := <-call.done:
		return res.rep, res.err
	case <-ctx.Done():
		call.deliver(fwdResult{err: ctx.Err()})
		return reply{}, ctx.Err()
	}
}

// suspect starts probing fn, unless a probe is running.
func (f *forwarder) suspect(fn *fwdNode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn.mu.Lock()
	defer fn.mu.Unlock()
	if f.closed || fn.probing {
		return
	}
	fn.probing = true
	f.wg.Add(1)
	go f.probe(fn)
}

// probe sends empty batches to fn, each bounded by ForwardProbeTimeout,
// every probeInterval, until one answers (fn answers again), the server
// closes, or fn has not been used for fwdForget. The first failure marks
// fn down and releases the ops waiting for it.
func (f *forwarder) probe(fn *fwdNode) {
	defer f.wg.Done()
	s := f.s
	empty := stream.AppendEnd(nil, 0)
	for {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ForwardProbeTimeout)
		a, err := s.nodes.post(ctx, fn.addr, "/kv/internal/forward", s.self, s.ck.Version(), empty)
		cancel()
		if err == nil && a.status != http.StatusOK {
			err = fmt.Errorf("probe answered %d", a.status)
		}
		fn.mu.Lock()
		forget := time.Since(fn.lastUsed) > fwdForget
		if err == nil || forget || s.ctx.Err() != nil {
			if fn.down != nil {
				s.log.Info("primary answering again", "addr", fn.addr)
			}
			fn.down, fn.probing = nil, false
			fn.mu.Unlock()
			return
		}
		var released []*fwdCall
		if fn.down == nil {
			s.log.Warn("primary not answering", "addr", fn.addr, "err", err)
			for c := range fn.calls {
				released = append(released, c)
			}
		}
		fn.down = err
		fn.mu.Unlock()
		for _, c := range released {
			c.deliver(fwdResult{err: fmt.Errorf("%w: %s: %w", errNotAnswering, fn.addr, err)})
		}
		t := time.NewTimer(probeInterval)
		select {
		case <-s.ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// close stops new forwards and waits for the batches in flight, which the
// server's cancelled context ends.
func (f *forwarder) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.wg.Wait()
}

// run sends the queue in batches until it is empty.
func (q *fwdQueue) run() {
	defer q.f.wg.Done()
	var buf []byte
	q.q.run(q.f.s.ctx, &q.mu,
		func() (bool, time.Duration) { return q.q.len() == 0, 0 },
		func(calls []*fwdCall) { buf = q.send(buf, calls) })
}

// send sends one batch, probing the primary when it does not answer
// within ForwardProbeTimeout, and delivers each op's reply. It returns buf,
// the encoding buffer, for the next batch.
func (q *fwdQueue) send(buf []byte, calls []*fwdCall) []byte {
	var replies []reply
	var err error
	q.batchSize.Observe(float64(len(calls)))
	fn := calls[0].node
	watch := time.AfterFunc(q.f.s.cfg.ForwardProbeTimeout, func() { q.f.suspect(fn) })
	buf, replies, err = q.post(buf, calls)
	watch.Stop()
	if err != nil && q.f.s.ctx.Err() == nil {
		q.f.suspect(fn)
	}
	for i, c := range calls {
		if err != nil {
			c.deliver(fwdResult{err: err})
		} else {
			c.deliver(fwdResult{rep: replies[i]})
		}
	}
	return buf
}

// post sends one batch and returns the primary's replies.
func (q *fwdQueue) post(buf []byte, calls []*fwdCall) ([]byte, []reply, error) {
	buf = buf[:0]
	for _, c := range calls {
		buf = appendFwdOp(buf, &c.op)
	}
	buf = stream.AppendEnd(buf, len(calls))
	a, err := q.f.s.postBatch(q.addr, "/kv/internal/forward", q.f.s.cfg.ForwardTimeout, buf)
	if err != nil {
		return buf, nil, err
	}
	replies, err := readFwdReplies(bytes.NewReader(a.body), len(calls))
	return buf, replies, err
}
