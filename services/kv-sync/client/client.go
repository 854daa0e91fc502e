// Package client reads and writes a kv-sync cluster with quorums, so that
// once a write is acknowledged no later read returns an older value
// (linearizable reads and writes, the ABD protocol).
//
// It routes each key with the ClusterKit SDK (clusterkit.dev/clusterkit/
// client), which keeps the partition map fresh, and talks to the owners of
// the key's partition directly:
//
//   - Set and Delete read the newest version of the key from the first
//     majority of the partition's ready owners (primary and replicas) to
//     answer, then write the value (a tombstone for Delete) with the next
//     version, (counter+1, this client's writer ID), to every owner, joining
//     owners included, and return once a majority of the ready owners
//     stored it.
//   - Get reads from the first majority of the ready owners to answer and
//     returns the newest version; when the answers differ, it first writes
//     that version back until a majority holds it, so that no later read
//     can see an older one.
//
// With three owners, every operation succeeds while any two answer, and
// none waits for a chosen owner: a read asks every ready owner, a write
// sends to every owner, and each returns on the first majority, so that an
// owner that is paused, cut off, or dead behind an address that drops
// packets costs nothing while the others answer. Each request to one node
// has its own deadline (WithCallTimeout, 1s by default), well under the
// operation's (WithTimeout, 5s); once one has run out of time, the client
// fails the requests queued for that node at once, and sends it one
// request at a time until it answers again.
//
//	c, err := client.New(ctx, []string{"127.0.0.1:8080"})
//	if err != nil { ... }
//	defer c.Close()
//	v, err := c.Set(ctx, "user:1", "Ada")
//	value, v, err := c.Get(ctx, "user:1")
package client

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	ckclient "clusterkit.dev/clusterkit/client"
	"clusterkit.dev/services/kit/kvclient"
)

// Limits of keys and values, the same as the servers'.
const (
	// MaxKeySize is the longest key, in bytes.
	MaxKeySize = 1 << 10
	// MaxValueSize is the longest value, in bytes.
	MaxValueSize = 1 << 20
)

// Errors returned by the client. Compare with errors.Is.
var (
	// ErrNotFound is returned by Get for a key never written or deleted.
	ErrNotFound = errors.New("kvsync: key not found")
	// ErrNoQuorum is returned when fewer than a majority of a partition's
	// owners answered. A write that fails with it may still have been
	// stored by some owners, and a later read may return it.
	ErrNoQuorum = errors.New("kvsync: no quorum")
	// ErrInvalid is returned, wrapped with the reason, for an empty or too
	// long key and a too long value. Nothing is sent.
	ErrInvalid = errors.New("kvsync: invalid request")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("kvsync: client closed")
)

// Version orders the writes of a key: (counter, writer), compared in that
// order.
type Version struct {
	Counter uint64 `json:"counter"`
	Writer  uint64 `json:"writer"`
}

// Less reports whether v is older than o.
func (v Version) Less(o Version) bool {
	return v.Counter < o.Counter || (v.Counter == o.Counter && v.Writer < o.Writer)
}

// String formats v as "counter.writer".
func (v Version) String() string {
	return strconv.FormatUint(v.Counter, 10) + "." + strconv.FormatUint(v.Writer, 10)
}

// Client is a kv-sync client. Its methods are safe for concurrent use.
type Client struct {
	sdk    *ckclient.Client
	ownSDK bool
	// hc sends the requests to the nodes, over the client's own pool of
	// connections (transport) with a short connect timeout.
	hc          *http.Client
	transport   *http.Transport
	writer      uint64
	timeout     time.Duration
	callTimeout time.Duration

	// bg bounds the requests still running when an operation returns
	// (the writes that complete the slowest owners' copies); wg counts
	// them and the batch senders.
	bg     context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	// closeMu orders operations that start against Close: an operation
	// counts itself in wg only while closed is false.
	closeMu sync.RWMutex
	closed  bool

	queuesMu sync.Mutex
	queues   map[queueKey]*nodeQueue
	peers    map[string]*peer

	lag lagTracker

	// token is sent with every request to a node; scheme is http or https.
	token, scheme string
}

// Option changes how New builds a Client.
type Option func(*options)

type options struct {
	sdk         *ckclient.Client
	sdkOpts     []ckclient.Option
	writer      uint64
	timeout     time.Duration
	callTimeout time.Duration
	dialTimeout time.Duration
	token       string
	tls         *tls.Config
}

// Defaults of the options.
const (
	defaultTimeout     = 5 * time.Second
	defaultCallTimeout = time.Second
	defaultDialTimeout = 500 * time.Millisecond
)

// WithSDK makes the client route with an existing ClusterKit SDK client
// instead of building one; Close leaves it open. The requests to the nodes
// still use the client's own connections.
func WithSDK(c *ckclient.Client) Option { return func(o *options) { o.sdk = c } }

// WithSDKOptions passes options to the ClusterKit SDK client that New
// builds. By default that client fetches the map over the kv-sync client's
// connections, each request bounded by the call timeout; an option of
// opts (ckclient.WithHTTPClient) may replace them.
func WithSDKOptions(opts ...ckclient.Option) Option {
	return func(o *options) { o.sdkOpts = append(o.sdkOpts, opts...) }
}

// WithWriterID sets the writer half of this client's versions. It must be
// unique among the clients writing at the same time and not 0. Default: a
// random number.
func WithWriterID(id uint64) Option { return func(o *options) { o.writer = id } }

// WithTimeout bounds an operation whose context has no deadline. Default
// 5s.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithCallTimeout bounds each request to one node, its connect included:
// a request to a node that does not answer in time fails, and the
// operation goes on with the other owners. It also bounds the writes an
// operation leaves running to the slowest owners. It must not exceed the
// operation timeout (WithTimeout), and should be well under it; too short,
// and a node slowed by a burst of load (a slow fsync) counts as failed.
// Default 1s, or the operation timeout if that is shorter.
func WithCallTimeout(d time.Duration) Option { return func(o *options) { o.callTimeout = d } }

// WithDialTimeout bounds the TCP connect to a node, so that a machine that
// is gone (its address drops packets) fails its requests quickly. Default
// 500ms, or the call timeout if that is shorter.
func WithDialTimeout(d time.Duration) Option { return func(o *options) { o.dialTimeout = d } }

// WithToken sends the cluster token with the client's requests to the
// owners: a cluster with a token (CLUSTER_TOKEN) refuses a versioned
// write or an owner's read without it, the client being one of the
// cluster's coordinators.
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithTLS makes the client speak HTTPS to the nodes, verifying them with
// cfg (the cluster's CA in RootCAs).
func WithTLS(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

// New returns a client of the cluster reachable at seeds ("host:port" of
// any nodes). It fetches the partition map before it returns.
func New(ctx context.Context, seeds []string, opts ...Option) (*Client, error) {
	o := options{timeout: defaultTimeout}
	for _, fn := range opts {
		fn(&o)
	}
	if o.timeout <= 0 {
		return nil, fmt.Errorf("%w: timeout must be positive, got %v", ErrInvalid, o.timeout)
	}
	if o.callTimeout == 0 {
		o.callTimeout = min(defaultCallTimeout, o.timeout)
	}
	if o.callTimeout < 0 || o.callTimeout > o.timeout {
		return nil, fmt.Errorf("%w: call timeout must be positive and at most the timeout (%v), got %v",
			ErrInvalid, o.timeout, o.callTimeout)
	}
	if o.dialTimeout == 0 {
		o.dialTimeout = min(defaultDialTimeout, o.callTimeout)
	}
	if o.dialTimeout < 0 {
		return nil, fmt.Errorf("%w: dial timeout must be positive, got %v", ErrInvalid, o.dialTimeout)
	}
	if o.writer == 0 {
		var b [8]byte
		for o.writer == 0 {
			_, _ = rand.Read(b[:])
			o.writer = binary.BigEndian.Uint64(b[:])
		}
	}
	c := &Client{sdk: o.sdk, writer: o.writer, timeout: o.timeout, callTimeout: o.callTimeout,
		queues: map[queueKey]*nodeQueue{}, peers: map[string]*peer{}, token: o.token, scheme: "http"}
	c.transport = kvclient.NewTransport(o.dialTimeout)
	if o.tls != nil {
		c.transport.TLSClientConfig, c.scheme = o.tls, "https"
	}
	c.hc = &http.Client{Transport: c.transport}
	if c.sdk == nil {
		sdkOpts := []ckclient.Option{ckclient.WithHTTPClient(&http.Client{Transport: c.transport, Timeout: c.callTimeout})}
		if o.token != "" {
			sdkOpts = append(sdkOpts, ckclient.WithToken(o.token))
		}
		if o.tls != nil {
			sdkOpts = append(sdkOpts, ckclient.WithTLS(o.tls))
		}
		sdkOpts = append(sdkOpts, o.sdkOpts...)
		sdk, err := ckclient.New(ctx, seeds, sdkOpts...)
		if err != nil {
			c.transport.CloseIdleConnections()
			return nil, err
		}
		c.sdk, c.ownSDK = sdk, true
	}
	c.bg, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// WriterID returns the writer half of this client's versions.
func (c *Client) WriterID() uint64 { return c.writer }

// SDK returns the ClusterKit SDK client the client routes with.
func (c *Client) SDK() *ckclient.Client { return c.sdk }

// Close waits for the operations in progress and the writes they left
// completing in the background, then closes the SDK client if New built it.
// Operations started after Close fail with ErrClosed. It is safe to call
// more than once.
func (c *Client) Close() error {
	c.once.Do(func() {
		c.closeMu.Lock()
		c.closed = true
		c.closeMu.Unlock()
		c.wg.Wait()
		c.cancel()
		if c.ownSDK {
			_ = c.sdk.Close()
		}
		c.transport.CloseIdleConnections()
	})
	return nil
}

// Set writes value under key and returns the write's version once a
// majority of the key's owners stored it.
func (c *Client) Set(ctx context.Context, key, value string) (Version, error) {
	if err := checkKey(key); err != nil {
		return Version{}, err
	}
	if len(value) > MaxValueSize {
		return Version{}, fmt.Errorf("%w: value is %d bytes; the limit is %d", ErrInvalid, len(value), MaxValueSize)
	}
	return c.write(ctx, key, record{value: value, found: true})
}

// Delete deletes key: it writes a tombstone, as Set writes a value. Deleting
// a missing key succeeds.
func (c *Client) Delete(ctx context.Context, key string) (Version, error) {
	if err := checkKey(key); err != nil {
		return Version{}, err
	}
	return c.write(ctx, key, record{deleted: true, found: true})
}

// Get returns key's value and version, or ErrNotFound. The value is the
// newest a majority of the owners answered, and at least as new as every
// write acknowledged before Get was called.
func (c *Client) Get(ctx context.Context, key string) (string, Version, error) {
	if err := checkKey(key); err != nil {
		return "", Version{}, err
	}
	if !c.enter() {
		return "", Version{}, ErrClosed
	}
	defer c.wg.Done()
	ctx, cancel := c.bound(ctx)
	defer cancel()
	var best record
	err := c.sdk.WithRetry(ctx, key, func(r ckclient.Route) error {
		answers, err := c.readQuorum(ctx, r, key)
		if err != nil {
			return err
		}
		best = newest(answers)
		if !best.found || agree(answers, best.version) {
			return nil
		}
		// Write the newest version back before returning it: a read that
		// follows must not find a majority without it.
		return c.writeQuorum(ctx, r, key, best)
	})
	switch {
	case err != nil:
		return "", Version{}, err
	case !best.found || best.deleted:
		return "", best.version, ErrNotFound
	}
	return best.value, best.version, nil
}

// write runs the two phases of a write: read the greatest version from a
// majority, then store rec with the next one.
func (c *Client) write(ctx context.Context, key string, rec record) (Version, error) {
	if !c.enter() {
		return Version{}, ErrClosed
	}
	defer c.wg.Done()
	ctx, cancel := c.bound(ctx)
	defer cancel()
	err := c.sdk.WithRetry(ctx, key, func(r ckclient.Route) error {
		answers, err := c.readQuorum(ctx, r, key)
		if err != nil {
			return err
		}
		rec.version = Version{Counter: newest(answers).version.Counter + 1, Writer: c.writer}
		return c.writeQuorum(ctx, r, key, rec)
	})
	if err != nil {
		return Version{}, err
	}
	return rec.version, nil
}

// enter counts an operation in wg, unless the client is closed. Requests
// and writes the operation starts count themselves in wg while it runs.
func (c *Client) enter() bool {
	c.closeMu.RLock()
	defer c.closeMu.RUnlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	return true
}

// bound gives ctx the client's timeout unless it has a deadline.
func (c *Client) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.timeout)
}

func checkKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: key must not be empty", ErrInvalid)
	}
	if len(key) > MaxKeySize {
		return fmt.Errorf("%w: key is %d bytes; the limit is %d", ErrInvalid, len(key), MaxKeySize)
	}
	return nil
}
