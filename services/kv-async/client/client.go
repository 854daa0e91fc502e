// Package client is the Go client of kv-async. It routes every request
// straight to the node that owns the key, using the ClusterKit client SDK:
// writes go to the key's primary, which replicates them in the background;
// reads go to the primary, or to a replica when the primary cannot be
// reached.
//
//	c, err := client.New(ctx, []string{"127.0.0.1:8080"})
//	if err != nil { ... }
//	defer c.Close()
//	err = c.Set(ctx, "user:1", "Ada")
//	v, err := c.Get(ctx, "user:1")
package client

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	ckclient "clusterkit.dev/clusterkit/client"
	"clusterkit.dev/clusterkit/wire"
	"clusterkit.dev/services/kit/kvclient"
	"clusterkit.dev/services/kv-async/internal/batch"
	"clusterkit.dev/services/kv-async/internal/jsonstr"
)

// ErrNotFound is returned by Get for a key that has no value.
var ErrNotFound = errors.New("kv-async: key not found")

// Client talks to a kv-async cluster. It is safe for concurrent use.
type Client struct {
	sdk         *ckclient.Client
	transport   *http.Transport
	hc          *http.Client // requests to the nodes, bounded by callTimeout each
	callTimeout time.Duration
	scheme      string // of the nodes' addresses: "http", or "https" WithTLS
	// bg is the context of the batches in flight; Close cancels it.
	bg     context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	queues map[string]*nodeQueue // writes, by node address
	wg     sync.WaitGroup        // batch senders
}

// Option changes how New builds a Client.
type Option func(*options)

type options struct {
	sdkOpts     []ckclient.Option
	callTimeout time.Duration
	dialTimeout time.Duration
	token       string
	tls         *tls.Config
}

// Defaults of the options.
const (
	defaultCallTimeout = time.Second
	defaultDialTimeout = 500 * time.Millisecond
)

// WithSDKOptions passes options to the ClusterKit SDK client that New
// builds (see clusterkit/client). By default that client fetches the map
// over the kv-async client's connections, each fetch bounded by the call
// timeout; ckclient.WithHTTPClient among opts replaces them for the SDK's
// own requests only.
func WithSDKOptions(opts ...ckclient.Option) Option {
	return func(o *options) { o.sdkOpts = append(o.sdkOpts, opts...) }
}

// WithCallTimeout bounds each request to one node, its connect included: a
// batch of writes to a primary, or one read. A write whose batch gets no
// answer in time fails with an error wrapping context.DeadlineExceeded,
// and may or may not have been applied; a write queued behind that batch
// waits for it, so a write to a node that has stopped answering fails
// within twice the call timeout. A read that gets no answer from the
// primary in time goes on to the replicas. Too short, and a primary slowed
// by a burst of load (a slow fsync) fails writes it would have taken.
// Default 1s.
func WithCallTimeout(d time.Duration) Option { return func(o *options) { o.callTimeout = d } }

// WithDialTimeout bounds the TCP connect to a node, so that a machine that
// is gone (its address drops packets) fails its requests quickly. Default
// 500ms, or the call timeout if that is shorter.
func WithDialTimeout(d time.Duration) Option { return func(o *options) { o.dialTimeout = d } }

// WithToken sends the cluster token with the client's reads of the
// partition map, which a cluster with TOKEN_FOR_READS refuses without it.
// The KV API itself (/kv/set, /kv/get, /kv/delete, /kv/batch) is the
// application's and needs no token.
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithTLS makes the client speak HTTPS to the nodes, verifying them with
// cfg (the cluster's CA in RootCAs), for a cluster run with TLS.
func WithTLS(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

// New connects to the cluster through any of seeds ("host:port") and
// fetches the partition map before it returns. Close the client when done.
func New(ctx context.Context, seeds []string, opts ...Option) (*Client, error) {
	var o options
	for _, fn := range opts {
		fn(&o)
	}
	if o.callTimeout == 0 {
		o.callTimeout = defaultCallTimeout
	}
	if o.dialTimeout == 0 {
		o.dialTimeout = min(defaultDialTimeout, o.callTimeout)
	}
	if o.callTimeout < 0 || o.dialTimeout < 0 {
		return nil, fmt.Errorf("kv-async: call timeout (%v) and dial timeout (%v) must be positive", o.callTimeout, o.dialTimeout)
	}
	tr := kvclient.NewTransport(o.dialTimeout)
	scheme := "http"
	sdkOpts := []ckclient.Option{ckclient.WithHTTPClient(&http.Client{Transport: tr, Timeout: o.callTimeout})}
	if o.tls != nil {
		tr.TLSClientConfig, scheme = o.tls, "https"
		sdkOpts = append(sdkOpts, ckclient.WithTLS(o.tls))
	}
	if o.token != "" {
		sdkOpts = append(sdkOpts, ckclient.WithToken(o.token))
	}
	sdkOpts = append(sdkOpts, o.sdkOpts...)
	sdk, err := ckclient.New(ctx, seeds, sdkOpts...)
	if err != nil {
		tr.CloseIdleConnections()
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	return &Client{sdk: sdk, transport: tr, hc: &http.Client{Transport: tr}, callTimeout: o.callTimeout,
		scheme: scheme, bg: bg, cancel: cancel, queues: map[string]*nodeQueue{}}, nil
}

// Close ends the writes in flight (they fail), stops the client's
// topology watch and closes its idle connections. Calls after Close fail.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	err := c.sdk.Close()
	c.transport.CloseIdleConnections()
	return err
}

// SDK returns the routing client underneath, for its map.
func (c *Client) SDK() *ckclient.Client { return c.sdk }

// Set stores value under key. It returns once the key's primary has
// logged the write, as its sync policy says (see the service's README);
// the replicas receive it shortly after. A node that no longer owns the
// key makes the client refresh its map and retry once.
func (c *Client) Set(ctx context.Context, key, value string) error {
	op := batch.Op{Kind: batch.Set, Key: []byte(key), Value: []byte(value)}
	return c.sdk.WithRetry(ctx, key, func(r ckclient.Route) error {
		if r.Primary == nil {
			return fmt.Errorf("kv-async: set %q: %w", key, ckclient.ErrNoPrimary)
		}
		_, err := c.write(ctx, r, op)
		return err
	})
}

// Delete removes key. Deleting a key that has no value succeeds.
func (c *Client) Delete(ctx context.Context, key string) error {
	op := batch.Op{Kind: batch.Delete, Key: []byte(key)}
	return c.sdk.WithRetry(ctx, key, func(r ckclient.Route) error {
		if r.Primary == nil {
			return fmt.Errorf("kv-async: delete %q: %w", key, ckclient.ErrNoPrimary)
		}
		_, err := c.write(ctx, r, op)
		return err
	})
}

// Get returns key's value from its primary, which has every acknowledged
// write of the key. If the primary cannot be reached (or the partition has
// none), Get reads from the replicas instead: their value may lag behind
// the primary's by the replication lag.
func (c *Client) Get(ctx context.Context, key string) (string, error) {
	var value string
	err := c.sdk.WithRetry(ctx, key, func(r ckclient.Route) error {
		var err error
		if r.Primary != nil {
			value, err = c.get(ctx, r, r.Primary, key, "")
			if !unreachable(err) {
				return err
			}
		}
		errs := []error{err}
		for i := range r.Replicas {
			value, err = c.get(ctx, r, &r.Replicas[i], key, "any")
			if err == nil || errors.Is(err, ErrNotFound) {
				return err
			}
			errs = append(errs, err)
		}
		if len(r.Replicas) == 0 && r.Primary == nil {
			errs = append(errs, ckclient.ErrNoPrimary)
		}
		return fmt.Errorf("kv-async: get %q: no owner answered: %w", key, errors.Join(errs...))
	})
	return value, err
}

// GetFrom reads key from one node with consistency "any": the node must be
// a ready owner of the key's partition, and its value may lag behind the
// primary's. It is meant for inspecting replicas.
func (c *Client) GetFrom(ctx context.Context, node wire.Node, key string) (string, error) {
	r, err := c.sdk.Route(key)
	if err != nil && !errors.Is(err, ckclient.ErrNoPrimary) {
		return "", err
	}
	return c.get(ctx, r, &node, key, "any")
}

func (c *Client) get(ctx context.Context, r ckclient.Route, n *wire.Node, key, consistency string) (string, error) {
	path := "/kv/get?key=" + url.QueryEscape(key)
	if consistency != "" {
		path += "&consistency=" + url.QueryEscape(consistency)
	}
	b, err := c.getBody(ctx, r, n, path)
	if ckclient.StatusCode(err) == http.StatusNotFound {
		return "", fmt.Errorf("%w: %q", ErrNotFound, key)
	}
	if err != nil {
		return "", err
	}
	return decodeValue(n, b)
}

// decodeValue returns the value of a get's answer. The plain answer
// (no escape sequence) is read without reflection.
func decodeValue(n *wire.Node, b []byte) (string, error) {
	var value []byte
	if jsonstr.ParseObject(b, func(m jsonstr.Member) bool {
		if string(m.Name) == "value" {
			if !m.String || value != nil {
				return false
			}
			value = m.Value
		}
		return true
	}) && value != nil {
		return string(value), nil
	}
	var resp struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		return "", fmt.Errorf("kv-async: decode answer of %s: %w", n.IP, err)
	}
	return resp.Value, nil
}

// getBody sends GET target to node n and returns the body of a 2xx
// answer. An answer that is not 2xx is an error, as
// clusterkit/client.Check makes it: a *ckclient.NotOwnerError for a 421,
// a *ckclient.StatusError otherwise.
//
// The request is bounded by the call timeout: a node that does not answer
// in time makes it fail with an error wrapping context.DeadlineExceeded.
func (c *Client) getBody(ctx context.Context, r ckclient.Route, n *wire.Node, target string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.scheme+"://"+n.IP+target, nil)
	if err != nil {
		return nil, err
	}
	ckclient.SetMapVersion(req, r)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("kv-async: GET %s: %w", n.IP, err)
	}
	defer func() {
		// Read to the end, so that the connection goes back to the pool.
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}()
	if err := ckclient.Check(resp); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("kv-async: read answer of %s: %w", n.IP, err)
	}
	return b, nil
}

// unreachable reports whether err means the node could not serve the
// request at all (as opposed to answering it): a transport error or a 5xx.
func unreachable(err error) bool {
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, context.Canceled) {
		return false
	}
	code := ckclient.StatusCode(err)
	return code == 0 || code >= 500
}
