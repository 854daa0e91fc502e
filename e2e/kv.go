package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"clusterkit.dev/clusterkit"
)

// KV speaks a cluster's KV API over HTTP (or HTTPS) from the host, through
// the published ports, as a user with curl would: kv-sync and kv-server-side
// take a request on any node, kv-async on the key's primary, which KV finds
// in the cluster's map (the nodes advertise names that resolve only inside
// the compose network, so the services' Go clients cannot be used here).
type KV struct {
	S  Strategy
	HC *http.Client
	// Scheme is "http" (the default when empty) or "https"; with https, HC
	// verifies the nodes (the cluster's CA in its TLS configuration).
	Scheme string
	// Token, when set, is sent as the cluster token (Authorization:
	// Bearer) with every request.
	Token string

	mu   sync.Mutex
	down map[int]bool // nodes not to send requests to
	next int
	m    *clusterkit.ClusterInfo
}

// NewKV returns a client of s's cluster.
func NewKV(s Strategy) *KV {
	return &KV{S: s, HC: &http.Client{Timeout: 3 * time.Second}, down: map[int]bool{}}
}

// SetDown marks node k as one not to send requests to, or clears it.
func (c *KV) SetDown(k int, down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down[k] = down
}

// anyNode returns the next node to send a request to, in turn.
func (c *KV) anyNode() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for range Nodes {
		c.next = c.next%Nodes + 1
		if !c.down[c.next] {
			return c.next
		}
	}
	return 1
}

// NodeNumber returns k of a node ID "kv-sync-k".
func NodeNumber(id string) (int, error) {
	i := strings.LastIndexByte(id, '-')
	k, err := strconv.Atoi(id[i+1:])
	if i < 0 || err != nil || k < 1 || k > Nodes {
		return 0, fmt.Errorf("node ID %q does not end in a node number", id)
	}
	return k, nil
}

// Map fetches node k's map.
func (c *KV) Map(ctx context.Context, k int) (*clusterkit.ClusterInfo, error) {
	var m clusterkit.ClusterInfo
	if err := c.GetJSON(ctx, k, "/cluster", &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// primary returns the node to send key's request to: any node, or for
// kv-async the key's primary in the last map fetched.
func (c *KV) primary(ctx context.Context, key string, refresh bool) (int, error) {
	if c.S.Name != "async" {
		return c.anyNode(), nil
	}
	c.mu.Lock()
	m := c.m
	c.mu.Unlock()
	if m == nil || refresh {
		var err error
		if m, err = c.Map(ctx, c.anyNode()); err != nil {
			return 0, err
		}
		c.mu.Lock()
		c.m = m
		c.mu.Unlock()
	}
	p := m.Partitions[clusterkit.PartitionIndex(key, m.PartitionCount)]
	if p.PrimaryNode == "" {
		return 0, fmt.Errorf("partition %d has no primary in map version %d", p.Index, m.Version)
	}
	return NodeNumber(p.PrimaryNode)
}

// Set writes key, retrying a refused or failed attempt until ctx ends.
func (c *KV) Set(ctx context.Context, key, value string) error {
	body, _ := json.Marshal(map[string]string{"key": key, "value": value})
	return c.retry(ctx, key, func(k int) error {
		return c.do(ctx, k, http.MethodPost, "/kv/set", body, nil)
	})
}

// Get reads key through the cluster, retrying until ctx ends; a key that is
// absent is an error.
func (c *KV) Get(ctx context.Context, key string) (string, error) {
	var v struct {
		Value string `json:"value"`
	}
	err := c.retry(ctx, key, func(k int) error {
		return c.GetJSON(ctx, k, "/kv/get?key="+url.QueryEscape(key), &v)
	})
	return v.Value, err
}

// GetLocal reads node k's own copy of key (once, no retry): kv-sync and
// kv-server-side with local=true, kv-async with consistency=any.
func (c *KV) GetLocal(ctx context.Context, k int, key string) (string, error) {
	q := "&local=true"
	if c.S.Name == "async" {
		q = "&consistency=any"
	}
	var v struct {
		Value string `json:"value"`
	}
	err := c.GetJSON(ctx, k, "/kv/get?key="+url.QueryEscape(key)+q, &v)
	return v.Value, err
}

func (c *KV) retry(ctx context.Context, key string, attempt func(k int) error) error {
	refresh := false
	for {
		k, err := c.primary(ctx, key, refresh)
		if err == nil {
			if err = attempt(k); err == nil {
				return nil
			}
		}
		refresh = true
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last error: %v)", key, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// HTTPError is an answer other than 200.
type HTTPError struct {
	Code int
	Body string
}

func (e *HTTPError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Code, e.Body) }

// GetJSON decodes the answer of node k to GET path into out.
func (c *KV) GetJSON(ctx context.Context, k int, path string, out any) error {
	return c.do(ctx, k, http.MethodGet, path, nil, out)
}

func (c *KV) do(ctx context.Context, k int, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	scheme := c.Scheme
	if scheme == "" {
		scheme = "http"
	}
	req, err := http.NewRequestWithContext(ctx, method, scheme+"://"+c.S.HostAddr(k)+path, rd)
	if err != nil {
		return err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HC.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return &HTTPError{Code: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

// IsNotFound reports whether err is a 404 answer.
func IsNotFound(err error) bool {
	var he *HTTPError
	return errors.As(err, &he) && he.Code == http.StatusNotFound
}
