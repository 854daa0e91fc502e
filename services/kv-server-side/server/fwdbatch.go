package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"clusterkit.dev/clusterkit"
	knode "clusterkit.dev/services/kit/node"
	"clusterkit.dev/services/kit/stream"
	"github.com/prometheus/client_golang/prometheus"
)

// Forwarded ops travel to the primary in batches (POST /kv/internal/forward): one
// batch of reads and two of writes per primary are in flight, and the ops
// that queue meanwhile leave together in the next one, so under load many
// client requests share one round trip between two nodes. Reads and writes queue
// apart: reads are answered at once, while writes wait for replication.
//
//	request: op* then 'E' | uvarint count
//	op:      kind ('S' set, 'G' get, 'D' delete) | uvarint len(key) | key
//	         [ | uvarint len(value) | value ]   (set only)
//	answer:  per op: uvarint status | uvarint len(body) | body (the JSON
//	         reply), then 'E' | uvarint count
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
	max  int
	// batchSize is kvss_forward_batch_ops of the queue's kind.
	batchSize prometheus.Observer

	mu     sync.Mutex
	queue  []*fwdCall
	active int
}

type fwdCall struct {
	op   op
	node *fwdNode
	done chan fwdResult
	once sync.Once
}

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
		q = &fwdQueue{f: f, addr: node.IP, max: fwdReadsInflight,
			batchSize: f.s.m.fwdBatch.WithLabelValues(fwdRead)}
		if k.writes {
			q.max = fwdWritesInflight
			q.batchSize = f.s.m.fwdBatch.WithLabelValues(fwdWrite)
		}
		f.queues[k] = q
	}
	q.mu.Lock()
	q.queue = append(q.queue, call)
	if q.active < q.max {
		q.active++
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
	for {
		q.mu.Lock()
		if len(q.queue) == 0 {
			q.active--
			q.mu.Unlock()
			return
		}
		n, size := 0, 0
		for n < len(q.queue) && n < fwdMaxBatch && (n == 0 || size < fwdMaxBatchBytes) {
			size += len(q.queue[n].op.key) + len(q.queue[n].op.value)
			n++
		}
		calls := make([]*fwdCall, n)
		copy(calls, q.queue)
		rest := copy(q.queue, q.queue[n:])
		clear(q.queue[rest:])
		q.queue = q.queue[:rest]
		q.mu.Unlock()

		var replies []reply
		var err error
		q.batchSize.Observe(float64(n))
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
	}
}

// post sends one batch and returns the primary's replies.
func (q *fwdQueue) post(buf []byte, calls []*fwdCall) ([]byte, []reply, error) {
	buf = buf[:0]
	for _, c := range calls {
		buf = appendFwdOp(buf, &c.op)
	}
	buf = stream.AppendEnd(buf, len(calls))
	s := q.f.s
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ForwardTimeout)
	defer cancel()
	a, err := s.nodes.post(ctx, q.addr, "/kv/internal/forward", s.self, s.ck.Version(), buf)
	if err != nil {
		return buf, nil, err
	}
	if a.status != http.StatusOK {
		return buf, nil, fmt.Errorf("%s answered %d: %s", q.addr, a.status, bytes.TrimSpace(a.body[:min(len(a.body), 1024)]))
	}
	replies, err := readFwdReplies(bytes.NewReader(a.body), len(calls))
	return buf, replies, err
}

// handleForward serves POST /kv/internal/forward: ops forwarded by another node, run
// here as their primary; an op whose primary is not this node is answered
// 421, never forwarded again. Writes run concurrently, since each waits for
// its replication.
func (s *Server) handleForward(w http.ResponseWriter, r *http.Request) {
	ops, err := readFwdOps(r.Body)
	if err != nil {
		s.writeError(w, bodyError(err))
		return
	}
	replies := make([]reply, len(ops))
	var wg sync.WaitGroup
	for i := range ops {
		run := func() {
			start := time.Now()
			role, rep := s.route(r.Context(), ops[i], true)
			replies[i] = rep
			s.m.Observe(ops[i].name(), role, result(rep.Status), start)
		}
		if ops[i].kind == opKindGet {
			run()
		} else {
			wg.Go(run)
		}
	}
	wg.Wait()
	var buf []byte
	for _, rep := range replies {
		buf = binary.AppendUvarint(buf, uint64(rep.Status))
		buf = binary.AppendUvarint(buf, uint64(len(rep.Body)))
		buf = append(buf, rep.Body...)
	}
	buf = stream.AppendEnd(buf, len(replies))
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set(clusterkit.HeaderMapVersion, strconv.FormatUint(s.ck.Version(), 10))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf)
}

func appendFwdOp(dst []byte, o *op) []byte {
	dst = append(dst, o.kind)
	dst = binary.AppendUvarint(dst, uint64(len(o.key)))
	dst = append(dst, o.key...)
	if o.kind == opKindSet {
		dst = binary.AppendUvarint(dst, uint64(len(o.value)))
		dst = append(dst, o.value...)
	}
	return dst
}

// readFwdOps decodes a forwarded batch; keys and values obey the API's
// limits, which the forwarding node checked.
func readFwdOps(r io.Reader) ([]op, error) {
	br := bufio.NewReaderSize(r, 4<<10)
	var ops []op
	for {
		kind, err := br.ReadByte()
		if err != nil {
			return nil, stream.Truncated(err)
		}
		switch kind {
		case stream.FrameEnd:
			n, err := binary.ReadUvarint(br)
			if err != nil {
				return nil, stream.Truncated(err)
			}
			if n != uint64(len(ops)) {
				return nil, fmt.Errorf("forward batch: end frame counts %d ops, received %d", n, len(ops))
			}
			return ops, nil
		case opKindSet, opKindGet, opKindDelete:
		default:
			return nil, fmt.Errorf("forward batch: unknown op %q", kind)
		}
		if len(ops) == fwdMaxOps {
			return nil, fmt.Errorf("forward batch: more than %d ops", fwdMaxOps)
		}
		key, err := stream.ReadField(br, MaxKeySize)
		if err != nil {
			return nil, err
		}
		if len(key) == 0 {
			return nil, errors.New("forward batch: empty key")
		}
		o := op{kind: kind, key: string(key)}
		if kind == opKindSet {
			if o.value, err = stream.ReadField(br, MaxValueSize); err != nil {
				return nil, err
			}
		}
		ops = append(ops, o)
	}
}

// readFwdReplies decodes the answer to a batch of n ops.
func readFwdReplies(r io.Reader, n int) ([]reply, error) {
	br := bufio.NewReaderSize(r, 4<<10)
	replies := make([]reply, n)
	for i := range replies {
		status, err := binary.ReadUvarint(br)
		if err != nil {
			return nil, stream.Truncated(err)
		}
		if status < 100 || status > 599 {
			return nil, fmt.Errorf("forward batch: status %d", status)
		}
		body, err := stream.ReadField(br, maxWireValue)
		if err != nil {
			return nil, err
		}
		replies[i] = reply{Status: int(status), Body: body}
	}
	kind, err := br.ReadByte()
	if err != nil {
		return nil, stream.Truncated(err)
	}
	count, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, stream.Truncated(err)
	}
	if kind != stream.FrameEnd || count != uint64(n) {
		return nil, fmt.Errorf("forward batch: bad end frame after %d replies", n)
	}
	return replies, nil
}

// send sends one request to node, marked as forwarded by this node and
// with the cluster token.
func (s *Server) send(ctx context.Context, node *clusterkit.Node, method, uri string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := knode.NewRequest(ctx, s.ck, node, method, uri, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set(headerForwardedBy, s.self)
	return s.client.Do(req)
}
