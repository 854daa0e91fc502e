package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"time"

	"clusterkit.dev/clusterkit"
)

// Workload drives concurrent clients over a cluster's KV API in plain HTTP,
// as an application without the Go clients would: kv-sync and
// kv-server-side take a request on any node, kv-async on the key's
// primary, found in a map the workload refreshes when a node refuses. Like
// any client with a list of nodes, it avoids a node that did not answer in
// time for 2s, and one that refused the connection or answered 5xx for 1s,
// while others are left.
type Workload struct {
	C       *Cluster
	Rec     *Recorder
	Keys    []string
	Clients int
	// Pause is each client's pause between operations, which bounds the
	// rate so that histories stay small enough to check.
	Pause time.Duration
	// Timeout bounds each request; a request that times out is Maybe.
	Timeout time.Duration

	hc   *http.Client
	mu   sync.Mutex
	m    *clusterkit.ClusterInfo
	shun map[string]time.Time // node -> until when requests avoid it
}

// Run runs the clients until ctx ends and returns when all have.
func (w *Workload) Run(ctx context.Context, seed uint64) {
	w.hc = &http.Client{Timeout: w.Timeout, Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
		MaxIdleConnsPerHost: 16,
	}}
	defer w.hc.CloseIdleConnections()
	var wg sync.WaitGroup
	for i := range w.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(seed, uint64(i)))
			for seq := 0; ctx.Err() == nil; seq++ {
				key := w.Keys[rnd.IntN(len(w.Keys))]
				if rnd.IntN(2) == 0 {
					w.Rec.Add(w.Do(ctx, i, Write, key, fmt.Sprintf("c%d-%d", i, seq), rnd))
				} else {
					w.Rec.Add(w.Do(ctx, i, Read, key, "", rnd))
				}
				select {
				case <-ctx.Done():
				case <-time.After(w.Pause):
				}
			}
		}()
	}
	wg.Wait()
}

// Do runs one operation and returns it, recorded with its times.
func (w *Workload) Do(ctx context.Context, client int, kind Kind, key, value string, rnd *rand.Rand) Op {
	op := Op{Client: client, Kind: kind, Key: key, Value: value}
	node, err := w.route(ctx, key, rnd)
	op.Call = w.Rec.Now()
	if err != nil {
		op.Return, op.Result, op.Err = w.Rec.Now(), Failed, err.Error()
		return op
	}
	op.Node = node.ID
	var status int
	var body []byte
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.Timeout)
	defer cancel()
	if kind == Write {
		b, _ := json.Marshal(map[string]string{"key": key, "value": value})
		status, body, err = w.send(rctx, http.MethodPost, "http://"+node.HTTP+"/kv/set", b)
	} else {
		status, body, err = w.send(rctx, http.MethodGet, "http://"+node.HTTP+"/kv/get?key="+url.QueryEscape(key), nil)
	}
	op.Return = w.Rec.Now()
	switch {
	case err != nil:
		op.Err = err.Error()
		op.Result = Maybe
		w.avoid(node.ID, 2*time.Second)
		w.forget() // the key may have a new primary
		if errors.Is(err, syscall.ECONNREFUSED) {
			op.Result = Failed // no process listened: nothing was applied
		}
	case status == http.StatusOK && kind == Read:
		var v struct {
			Value string `json:"value"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			op.Result, op.Err = Failed, "decode: "+err.Error()
		} else {
			op.Result, op.Value = OK, v.Value
		}
	case status == http.StatusOK:
		op.Result = OK
	case status == http.StatusNotFound && kind == Read:
		op.Result, op.Value = OK, ""
	case status == clusterkit.StatusNotOwner, status >= 400 && status < 500:
		// Refused before any change: the node does not own the key (a
		// map behind), or the request is wrong.
		op.Result, op.Err = Failed, fmt.Sprintf("%d %s", status, body)
		w.forget()
	default:
		op.Result, op.Err = Maybe, fmt.Sprintf("%d %s", status, body)
		w.forget()
		w.avoid(node.ID, time.Second)
	}
	if op.Result != OK && kind == Read {
		op.Result = Failed // a failed read observed nothing
	}
	return op
}

func (w *Workload) send(ctx context.Context, method, u string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := w.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

// route picks the node for key: any node, or the key's primary.
func (w *Workload) route(ctx context.Context, key string, rnd *rand.Rand) (*Node, error) {
	nodes := w.C.Nodes()
	if !w.C.cfg.Strategy.PrimaryOnly {
		w.mu.Lock()
		now := time.Now()
		ok := nodes[:0:0]
		for _, n := range nodes {
			if !now.Before(w.shun[n.ID]) {
				ok = append(ok, n)
			}
		}
		w.mu.Unlock()
		if len(ok) > 0 {
			nodes = ok
		}
		return nodes[rnd.IntN(len(nodes))], nil
	}
	w.mu.Lock()
	m := w.m
	w.mu.Unlock()
	if m == nil {
		// Any node's map will do: a node that refuses points at the
		// newer one by its 421, and the next attempt refreshes.
		n := nodes[rnd.IntN(len(nodes))]
		mctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		var err error
		if m, err = w.C.Map(mctx, n); err != nil {
			return nil, fmt.Errorf("map from %s: %w", n.ID, err)
		}
		w.mu.Lock()
		w.m = m
		w.mu.Unlock()
	}
	p := m.Partitions[clusterkit.PartitionIndex(key, m.PartitionCount)]
	if n := w.C.Node(p.PrimaryNode); n != nil {
		return n, nil
	}
	w.forget()
	return nil, fmt.Errorf("partition %d has no primary in map version %d", p.Index, m.Version)
}

// avoid makes requests avoid node id for d.
func (w *Workload) avoid(id string, d time.Duration) {
	w.mu.Lock()
	if w.shun == nil {
		w.shun = map[string]time.Time{}
	}
	w.shun[id] = time.Now().Add(d)
	w.mu.Unlock()
}

// forget drops the cached map, so the next request fetches a new one.
func (w *Workload) forget() {
	w.mu.Lock()
	w.m = nil
	w.mu.Unlock()
}
