package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"clusterkit.dev/clusterkit/wire"
	"clusterkit.dev/services/kv-sync/internal/batch"
)

// fakeNode is a kv-sync node in memory: it serves a one-partition map and
// the replica requests of POST /kv/batch. When hung, it takes requests
// and answers none, as a stopped process does, until the client gives up.
type fakeNode struct {
	id   string
	srv  *httptest.Server
	hung atomic.Bool
	quit chan struct{}

	requests, open, maxOpen atomic.Int64

	mu   sync.Mutex
	info wire.ClusterInfo
	recs map[string]batch.Result
}

// fakeCluster starts n fake nodes that all own partition 0, the first as
// primary.
func fakeCluster(t *testing.T, n int) []*fakeNode {
	t.Helper()
	nodes := make([]*fakeNode, n)
	info := wire.ClusterInfo{ClusterName: "test", Version: 1, PartitionCount: 1, ReplicationFactor: n,
		Partitions: []wire.Partition{{ID: "partition-0", Index: 0, Version: 1}}}
	for i := range nodes {
		f := &fakeNode{id: fmt.Sprintf("node-%d", i+1), quit: make(chan struct{}), recs: map[string]batch.Result{}}
		f.srv = httptest.NewServer(f)
		t.Cleanup(func() {
			close(f.quit)
			f.srv.Close()
		})
		nodes[i] = f
		info.Nodes = append(info.Nodes, wire.Node{ID: f.id, IP: f.srv.Listener.Addr().String(), State: wire.NodeAlive, Weight: 1})
		if i == 0 {
			info.Partitions[0].PrimaryNode = f.id
		} else {
			info.Partitions[0].ReplicaNodes = append(info.Partitions[0].ReplicaNodes, f.id)
		}
	}
	info.LeaderID = nodes[0].id
	for _, f := range nodes {
		f.info = info
	}
	return nodes
}

func (f *fakeNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(wire.HeaderMapVersion, "1")
	if r.URL.Path == "/cluster" {
		_ = json.NewEncoder(w).Encode(f.info)
		return
	}
	f.requests.Add(1)
	open := f.open.Add(1)
	defer f.open.Add(-1)
	for {
		if m := f.maxOpen.Load(); open <= m || f.maxOpen.CompareAndSwap(m, open) {
			break
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if f.hung.Load() {
		select {
		case <-r.Context().Done():
		case <-f.quit:
		}
		return
	}
	ops, err := batch.ReadOps(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var out []byte
	f.mu.Lock()
	for _, op := range ops {
		res := batch.Result{Status: batch.StatusAbsent}
		held, found := f.recs[op.Key]
		if found {
			res = held
		}
		if op.Kind == batch.OpWrite {
			v := Version{Counter: op.Counter, Writer: op.Writer}
			if !found || (Version{Counter: held.Counter, Writer: held.Writer}).Less(v) {
				f.recs[op.Key] = batch.Result{Status: batch.StatusFound, Counter: op.Counter, Writer: op.Writer,
					Deleted: op.Deleted, Value: append([]byte(nil), op.Value...)}
			}
			res = batch.Result{Status: batch.StatusOK}
		}
		out = batch.AppendResult(out, &res)
	}
	f.mu.Unlock()
	out = batch.AppendEnd(out, len(ops))
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	_, _ = w.Write(out)
}

// holds reports whether the node stored key with value.
func (f *fakeNode) holds(key, value string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.recs[key]
	return ok && string(r.Value) == value
}

func newFakeClient(t *testing.T, nodes []*fakeNode, opts ...Option) *Client {
	t.Helper()
	c, err := New(context.Background(), []string{nodes[0].srv.Listener.Addr().String()}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// A hung owner, primary or replica, costs reads and writes nothing while
// the two others answer; it gets one request at a time once its first ones
// ran out of time, and the writes again once it answers.
func TestHungOwnerCostsNothing(t *testing.T) {
	const callTimeout = 300 * time.Millisecond
	for _, hung := range []int{0, 2} {
		t.Run(fmt.Sprintf("owner %d of 3", hung+1), func(t *testing.T) {
			nodes := fakeCluster(t, 3)
			c := newFakeClient(t, nodes, WithCallTimeout(callTimeout))
			nodes[hung].hung.Store(true)

			var slowest time.Duration
			start := time.Now()
			for i := range 200 {
				key, value := fmt.Sprintf("k%d", i%10), fmt.Sprintf("v%d", i)
				t0 := time.Now()
				if _, err := c.Set(context.Background(), key, value); err != nil {
					t.Fatalf("set %s: %v", key, err)
				}
				if got, _, err := c.Get(context.Background(), key); err != nil || got != value {
					t.Fatalf("get %s: %q, %v; want %q", key, got, err, value)
				}
				slowest = max(slowest, time.Since(t0))
			}
			elapsed := time.Since(start)
			t.Logf("200 sets and gets in %v, the slowest pair %v; the hung node got %d requests, at most %d at once",
				elapsed, slowest, nodes[hung].requests.Load(), nodes[hung].maxOpen.Load())
			if slowest >= callTimeout {
				t.Errorf("an operation waited %v for the hung owner", slowest)
			}
			// Before its first requests run out of time: a read and a write
			// batch; after: one probe at a time, every probeInterval at most.
			if m := nodes[hung].maxOpen.Load(); m > 3 {
				t.Errorf("%d requests at once to the hung node", m)
			}
			if n, most := nodes[hung].requests.Load(), int64(3+elapsed/probeInterval+1); n > most {
				t.Errorf("the hung node got %d requests in %v, more than %d", n, elapsed, most)
			}
			// The writes to the hung node count as missed once their
			// requests run out of time, which the 200 pairs may beat.
			var missed uint64
			for deadline := time.Now().Add(10 * callTimeout); missed == 0 && time.Now().Before(deadline); {
				for _, l := range c.Lag() {
					if l.Node == nodes[hung].id {
						missed = l.Missed
					}
				}
				if missed == 0 {
					time.Sleep(callTimeout / 10)
				}
			}
			if missed == 0 {
				t.Errorf("no missed write reported for the hung node: %+v", c.Lag())
			}

			// Back, it gets the writes again.
			nodes[hung].hung.Store(false)
			deadline := time.Now().Add(5 * time.Second)
			for i := 0; !nodes[hung].holds("back", strconv.Itoa(i)); i++ {
				if time.Now().After(deadline) {
					t.Fatal("the node that answers again gets no write")
				}
				if _, err := c.Set(context.Background(), "back", strconv.Itoa(i+1)); err != nil {
					t.Fatal(err)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// Requests queued for a hung node fail when its batch runs out of time,
// not after a timeout each; new ones then fail at once but for a probe; and
// the queue is bounded meanwhile.
func TestHungNodeQueueFailsFastAndIsBounded(t *testing.T) {
	const callTimeout = 300 * time.Millisecond
	nodes := fakeCluster(t, 3)
	c := newFakeClient(t, nodes, WithCallTimeout(callTimeout))
	nodes[1].hung.Store(true)
	if !c.enter() {
		t.Fatal("client closed")
	}
	defer c.wg.Done()
	q := c.node(nodes[1].srv.Listener.Addr().String(), batch.OpWrite)

	type answer struct {
		err error
		at  time.Duration
	}
	send := func(n int) []answer {
		done := make(chan callResult, n)
		start := time.Now()
		for i := range n {
			q.send(&call{op: batch.Op{Kind: batch.OpWrite, Key: "k", Counter: 1, Writer: 1}, tag: i, done: done})
		}
		out := make([]answer, n)
		for range n {
			res := <-done
			out[res.tag] = answer{res.err, time.Since(start)}
		}
		return out
	}

	// The first requests leave at once, in a batch; maxQueuedOps queue
	// behind them; the next ones fail at once. All fail by the first
	// batch's call timeout.
	answers := send(maxBatchOps + maxQueuedOps + 10)
	backlog := 0
	for i, a := range answers {
		switch {
		case a.err == nil:
			t.Fatalf("request %d to the hung node succeeded", i)
		case a.at > callTimeout+callTimeout/2:
			t.Fatalf("request %d failed after %v, more than about one call timeout (%v): %v", i, a.at, callTimeout, a.err)
		case errors.Is(a.err, errBacklog):
			backlog++
			if a.at > callTimeout/2 {
				t.Fatalf("request %d beyond the queue's bound failed after %v, not at once", i, a.at)
			}
		}
	}
	if backlog < 10 {
		t.Fatalf("%d requests beyond the queue's bound, want 10 or more", backlog)
	}
	// Down now: a request fails at once.
	if a := send(1)[0]; !errors.Is(a.err, errNotAnswering) || a.at > callTimeout/2 {
		t.Fatalf("request to the node that is down: %v after %v, want errNotAnswering at once", a.err, a.at)
	}
	// After probeInterval, one goes out as a probe (and waits), the others
	// fail at once.
	time.Sleep(probeInterval)
	answers = send(20)
	if answers[0].at < callTimeout/2 || errors.Is(answers[0].err, errNotAnswering) {
		t.Fatalf("the probe: %v after %v", answers[0].err, answers[0].at)
	}
	for i, a := range answers[1:] {
		if !errors.Is(a.err, errNotAnswering) {
			t.Fatalf("request %d while the probe runs: %v, want errNotAnswering", i+1, a.err)
		}
	}
	// Back: the next probe succeeds, and so does what follows.
	nodes[1].hung.Store(false)
	time.Sleep(probeInterval)
	for i, a := range send(1) {
		if a.err != nil {
			t.Fatalf("probe %d to the node back: %v", i, a.err)
		}
	}
	for i, a := range send(10) {
		if a.err != nil {
			t.Fatalf("request %d to the node back: %v", i, a.err)
		}
	}
}
