// Package client routes keys to the nodes of a ClusterKit cluster from
// outside it: it fetches the partition map from any node (GET /cluster),
// keeps it fresh with a long-poll watch, and hashes keys exactly as the
// nodes do, so a request goes straight to the node that owns the key.
//
//	c, err := client.New(ctx, []string{"10.0.0.1:8080", "10.0.0.2:8080"})
//	if err != nil { ... }
//	defer c.Close()
//	r, err := c.Route("user:123") // r.Primary, r.ReadOwners(), r.WriteOwners()
//
// Service clients send their requests with HTTPClient, turn answers into
// errors with Check, and wrap each keyed operation in WithRetry, which
// refreshes the map and retries once when a node answers that it no longer
// owns the key (wire.StatusNotOwner).
package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"clusterkit.dev/clusterkit/wire"
)

// Client holds a snapshot of the cluster map and keeps it fresh. All
// methods are safe for concurrent use. Close it to stop its watch.
type Client struct {
	opts options
	log  *slog.Logger

	hc       *http.Client // for service requests and fetches
	watchHC  *http.Client // hc without Timeout, for long-polls
	ownTrans *http.Transport

	seeds []string // "http://host:port"

	topo atomic.Pointer[Topology]
	// changed is closed and replaced whenever topo changes.
	changed atomic.Pointer[chan struct{}]
	// last is the base URL that answered most recently.
	last atomic.Pointer[string]

	mu sync.Mutex
	// failed holds the base URLs whose last fetch failed, with the time of
	// the failure: addresses tries them after the others.
	failed map[string]time.Time

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// New fetches the cluster map from the first seed that answers with one
// (seeds are "host:port" or "http://host:port") and, unless WithoutWatch
// is given, starts watching it for changes. It keeps trying the seeds in
// turn, with a growing pause, until one answers, ctx is done or the start
// timeout (WithStartTimeout, default 10s) passes. Each seed is given at
// most the fetch timeout (WithFetchTimeout, default 2s), so a seed that
// accepts connections but never answers delays New by at most that much
// when another seed is live. The returned client must be closed.
func New(ctx context.Context, seeds []string, opts ...Option) (*Client, error) {
	o := defaultOptions()
	for _, fn := range opts {
		fn(&o)
	}
	def := defaultOptions()
	if o.dialTimeout <= 0 {
		o.dialTimeout = def.dialTimeout
	}
	if o.fetchTimeout <= 0 {
		o.fetchTimeout = def.fetchTimeout
	}
	c := &Client{opts: o, log: o.logger, done: make(chan struct{}), failed: map[string]time.Time{}}
	for _, s := range seeds {
		if s = strings.TrimSpace(s); s != "" {
			c.seeds = append(c.seeds, c.baseURL(s))
		}
	}
	if len(c.seeds) == 0 {
		return nil, ErrNoSeeds
	}
	if o.httpClient != nil {
		c.hc = o.httpClient
	} else {
		c.ownTrans = newTransport(o.dialTimeout)
		c.ownTrans.TLSClientConfig = o.tls
		c.hc = &http.Client{Transport: c.ownTrans, Timeout: o.requestTimeout}
	}
	w := *c.hc
	w.Timeout = 0
	c.watchHC = &w
	ch := make(chan struct{})
	c.changed.Store(&ch)
	c.ctx, c.cancel = context.WithCancel(context.Background())

	if err := c.bootstrap(ctx); err != nil {
		c.cancel()
		c.closeIdle()
		return nil, err
	}
	if o.watch {
		go c.watch()
	} else {
		close(c.done)
	}
	return c, nil
}

// bootstrap fetches the first map, trying every seed in turn.
func (c *Client) bootstrap(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.startTimeout)
	defer cancel()
	pause := 50 * time.Millisecond
	for {
		var errs []error
		for _, s := range c.seeds {
			info, _, err := c.fetch(ctx, s, 0, 0)
			if err == nil {
				if _, err = c.publish(info); err == nil {
					c.markAnswered(s)
					return nil
				}
			} else {
				c.markFailed(s)
			}
			c.log.Debug("seed failed", "seed", s, "err", err)
			errs = append(errs, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("client: no seed gave a partition map: %w", errors.Join(append(errs, ctx.Err())...))
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Second)
	}
}

// Close stops the watch and waits for its goroutine to return, then closes
// the idle connections of the client's own pool. Route keeps answering
// from the last map. Close is safe to call more than once.
func (c *Client) Close() error {
	c.once.Do(func() {
		c.cancel()
		<-c.done
		c.closeIdle()
	})
	return nil
}

func (c *Client) closeIdle() {
	if c.ownTrans != nil {
		c.ownTrans.CloseIdleConnections()
	}
}

// HTTPClient returns the client's pooled keep-alive HTTP client, for the
// requests of service clients: sharing it shares its connections. A
// connection returns to the pool only once its response body has been read
// to the end and closed.
func (c *Client) HTTPClient() *http.Client { return c.hc }

// Topology returns the current map snapshot. It is never nil after New.
func (c *Client) Topology() *Topology { return c.topo.Load() }

// Version returns the version of the current map.
func (c *Client) Version() uint64 { return c.topo.Load().Version }

// Route returns the route of key's partition in the current map. It takes
// no lock and does not allocate. With ErrNoPrimary the route still lists
// the partition's other owners.
func (c *Client) Route(key string) (Route, error) { return c.topo.Load().Route(key) }

// WaitForVersion blocks until the client's map version is at least v or
// ctx is done. It does not fetch by itself: pair it with Refresh, or rely
// on the watch.
func (c *Client) WaitForVersion(ctx context.Context, v uint64) error {
	for {
		ch := c.changed.Load()
		if c.topo.Load().Version >= v {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("client: map version %d not reached (at %d): %w", v, c.Version(), ctx.Err())
		case <-*ch:
		}
	}
}

// Refresh fetches the map now from the first node that answers, trying the
// node that answered last, then the map's nodes, then the seeds, and last
// of all the nodes whose latest fetch failed. Each node is given at most
// the fetch timeout (WithFetchTimeout) before the next is tried. It returns
// nil once one answered, whether or not its map was newer.
func (c *Client) Refresh(ctx context.Context) error {
	if c.ctx.Err() != nil {
		return ErrClosed
	}
	var errs []error
	for _, addr := range c.addresses() {
		if err := c.refreshFrom(ctx, addr); err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		return nil
	}
	return fmt.Errorf("client: refresh: %w", errors.Join(errs...))
}

// refreshFrom fetches the map from one node and installs it if newer.
func (c *Client) refreshFrom(ctx context.Context, addr string) error {
	info, _, err := c.fetch(ctx, addr, 0, 0)
	if err != nil {
		c.markFailed(addr)
		return err
	}
	if _, err := c.publish(info); err != nil {
		return err
	}
	c.markAnswered(addr)
	return nil
}

// markFailed records that addr did not answer a fetch, so that addresses
// lists it after the nodes that did.
func (c *Client) markFailed(addr string) {
	if c.ctx.Err() != nil {
		return // the fetch was cut short by Close, not by the node
	}
	c.mu.Lock()
	c.failed[addr] = time.Now()
	c.mu.Unlock()
}

// markAnswered records that addr answered with a usable map.
func (c *Client) markAnswered(addr string) {
	c.last.Store(&addr)
	c.clearFailed(addr)
}

// clearFailed records that addr answered.
func (c *Client) clearFailed(addr string) {
	c.mu.Lock()
	delete(c.failed, addr)
	c.mu.Unlock()
}

// suspect reports whether the latest fetch from addr failed.
func (c *Client) suspect(addr string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.failed[addr]
	return ok
}

// publish installs the map in info if it is newer than the current one,
// and reports whether it did.
func (c *Client) publish(info *wire.ClusterInfo) (bool, error) {
	t, err := newTopology(info)
	if err != nil {
		return false, err
	}
	for {
		old := c.topo.Load()
		if old != nil && t.Version <= old.Version {
			return false, nil
		}
		if c.topo.CompareAndSwap(old, t) {
			next := make(chan struct{})
			prev := c.changed.Swap(&next)
			close(*prev)
			return true, nil
		}
	}
}

// addresses lists the base URLs to try, best first: the one that answered
// last, the map's live nodes, the map's other nodes, then the seeds; the
// ones whose latest fetch failed come after all of these, the earliest
// failure first.
func (c *Client) addresses() []string {
	var out []string
	seen := map[string]bool{}
	add := func(u string) {
		if !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	if l := c.last.Load(); l != nil {
		add(*l)
	}
	if t := c.topo.Load(); t != nil {
		for _, n := range t.Nodes {
			if n.IP != "" && n.State == wire.NodeAlive {
				add(c.baseURL(n.IP))
			}
		}
		for _, n := range t.Nodes {
			if n.IP != "" {
				add(c.baseURL(n.IP))
			}
		}
	}
	for _, s := range c.seeds {
		add(s)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.failed) == 0 {
		return out
	}
	good := out[:0:0]
	var bad []string
	for _, u := range out {
		if _, ok := c.failed[u]; ok {
			bad = append(bad, u)
		} else {
			good = append(good, u)
		}
	}
	slices.SortStableFunc(bad, func(a, b string) int { return c.failed[a].Compare(c.failed[b]) })
	return append(good, bad...)
}

// baseURL turns "host:port" into "http://host:port", or "https://..."
// with WithTLS.
func (c *Client) baseURL(addr string) string { return baseURL(addr, c.opts.tls != nil) }

// baseURL turns "host:port" into "http://host:port", or "https://..." when
// secure; a URL is kept.
func baseURL(addr string, secure bool) string {
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		return strings.TrimRight(addr, "/")
	}
	if secure {
		return "https://" + addr
	}
	return "http://" + addr
}
