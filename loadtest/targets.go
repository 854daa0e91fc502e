package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	asyncclient "clusterkit.dev/services/kv-async/client"
	syncclient "clusterkit.dev/services/kv-sync/client"
)

// newHTTPClient returns the keep-alive client shared by a strategy's
// workers: enough idle connections per node for every worker.
func newHTTPClient(clients int) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        4 * clients,
			MaxIdleConnsPerHost: 2 * clients,
			IdleConnTimeout:     90 * time.Second,
		},
	}
}

// plainTarget speaks the KV API over HTTP to any of a set of nodes, in
// turn: the server-side strategy (any node routes) and the echo ceiling.
type plainTarget struct {
	hc    *http.Client
	nodes []string
	next  atomic.Uint64
}

func newPlainTarget(nodes []string, clients int) *plainTarget {
	return &plainTarget{hc: newHTTPClient(clients), nodes: nodes}
}

func (p *plainTarget) node() string {
	return p.nodes[int(p.next.Add(1)%uint64(len(p.nodes)))]
}

func (p *plainTarget) Set(ctx context.Context, key, value string) error {
	body, err := json.Marshal(map[string]string{"key": key, "value": value})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+p.node()+"/kv/set", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	_, err = p.do(req)
	return err
}

func (p *plainTarget) Get(ctx context.Context, key string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.node()+"/kv/get?key="+url.QueryEscape(key), nil)
	if err != nil {
		return "", err
	}
	b, err := p.do(req)
	if err != nil {
		return "", err
	}
	var v struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return "", fmt.Errorf("decode answer: %w", err)
	}
	return v.Value, nil
}

func (p *plainTarget) do(req *http.Request) ([]byte, error) {
	resp, err := p.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, bytes.TrimSpace(b))
	}
	return b, nil
}

func (p *plainTarget) Close() error {
	p.hc.CloseIdleConnections()
	return nil
}

// newTarget connects to a cluster of the given strategy through seeds,
// with sec's token and TLS (kv-sync's client only: parseFlags refuses
// them for the others).
func newTarget(ctx context.Context, strategy string, seeds []string, clients int, sec security) (target, error) {
	switch strategy {
	case "server-side", "echo":
		return newPlainTarget(seeds, clients), nil
	case "async":
		return asyncclient.New(ctx, seeds, sec.asyncOptions()...)
	case "sync":
		c, err := syncclient.New(ctx, seeds, sec.syncOptions()...)
		if err != nil {
			return nil, err
		}
		return syncTarget{c}, nil
	}
	return nil, fmt.Errorf("unknown strategy %q", strategy)
}

// syncTarget adapts the kv-sync client, whose calls also return the
// version they wrote or read.
type syncTarget struct{ c *syncclient.Client }

func (t syncTarget) Set(ctx context.Context, key, value string) error {
	_, err := t.c.Set(ctx, key, value)
	return err
}

func (t syncTarget) Get(ctx context.Context, key string) (string, error) {
	v, _, err := t.c.Get(ctx, key)
	return v, err
}

func (t syncTarget) Close() error { return t.c.Close() }
