// Package client reads and writes a kv-sync cluster with quorums, so that
// once a write is acknowledged no later read returns an older value
// (linearizable reads and writes, the ABD protocol).
//
// It routes each key with the ClusterKit SDK (clusterkit.dev/clusterkit/
// client), which keeps the partition map fresh, and talks to the owners of
// the key's partition directly:
//
//   - Set and Delete read the newest version of the key from a majority of
//     the partition's ready owners (primary and replicas), then write the
//     value (a tombstone for Delete) with the next version, (counter+1, this
//     client's writer ID), to every owner, joining owners included, and
//     return once a majority of the ready owners stored it.
//   - Get reads from a majority of the ready owners and returns the newest
//     version; when the answers differ, it first writes that version back
//     until a majority holds it, so that no later read can see an older
//     one.
//
// With three owners, every operation succeeds while any two answer.
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
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	ckclient "clusterkit.dev/clusterkit/client"
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
	sdk     *ckclient.Client
	ownSDK  bool
	hc      *http.Client
	writer  uint64
	timeout time.Duration

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

	lag lagTracker
}

// Option changes how New builds a Client.
type Option func(*options)

type options struct {
	sdk     *ckclient.Client
	sdkOpts []ckclient.Option
	writer  uint64
	timeout time.Duration
}

// WithSDK makes the client route with an existing ClusterKit SDK client
// (and its HTTP connections) instead of building one; Close leaves it
// open.
func WithSDK(c *ckclient.Client) Option { return func(o *options) { o.sdk = c } }

// WithSDKOptions passes options to the ClusterKit SDK client that New
// builds.
func WithSDKOptions(opts ...ckclient.Option) Option {
	return func(o *options) { o.sdkOpts = append(o.sdkOpts, opts...) }
}

// WithWriterID sets the writer half of this client's versions. It must be
// unique among the clients writing at the same time and not 0. Default: a
// random number.
func WithWriterID(id uint64) Option { return func(o *options) { o.writer = id } }

// WithTimeout bounds an operation whose context has no deadline, and the
// writes it leaves running. Default 5s.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// New returns a client of the cluster reachable at seeds ("host:port" of
// any nodes). It fetches the partition map before it returns.
func New(ctx context.Context, seeds []string, opts ...Option) (*Client, error) {
	o := options{timeout: 5 * time.Second}
	for _, fn := range opts {
		fn(&o)
	}
	if o.timeout <= 0 {
		return nil, fmt.Errorf("%w: timeout must be positive, got %v", ErrInvalid, o.timeout)
	}
	if o.writer == 0 {
		var b [8]byte
		for o.writer == 0 {
			_, _ = rand.Read(b[:])
			o.writer = binary.BigEndian.Uint64(b[:])
		}
	}
	c := &Client{sdk: o.sdk, writer: o.writer, timeout: o.timeout, queues: map[queueKey]*nodeQueue{}}
	if c.sdk == nil {
		sdk, err := ckclient.New(ctx, seeds, o.sdkOpts...)
		if err != nil {
			return nil, err
		}
		c.sdk, c.ownSDK = sdk, true
	}
	c.hc = c.sdk.HTTPClient()
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
