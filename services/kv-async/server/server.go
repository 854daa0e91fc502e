// Package server is the kv-async node: a key-value store whose writes are
// accepted by the primary of the key's partition, stored there (see
// clusterkit.dev/services/kv-async/internal/store), and then replicated by that primary to the partition's other
// owners in the background, in order and in batches.
//
// A Server attaches to a ClusterKit node: it serves its KV API on the
// node's HTTP port, copies partitions when the node gains them, and ships
// the partitions the node is primary of to their replicas. Build it with
// New before the ClusterKit's Start; Close it after the ClusterKit's Stop.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kit/api"
	"clusterkit.dev/services/kit/migrate"
	knode "clusterkit.dev/services/kit/node"
	"clusterkit.dev/services/kv-async/internal/store"
)

// Config configures a Server. Only DataDir is required.
type Config struct {
	// DataDir holds the store (a Pebble database). Required.
	DataDir string
	// SyncWindow is the sync policy of the store's log (see
	// store.Options.SyncWindow): 0 acknowledges a write once fsynced; a
	// positive window once written to the log, while the oldest write not
	// yet fsynced is younger than the window.
	SyncWindow time.Duration
	// ReplicationBatch caps the records of one replication request to a
	// replica (across partitions). Larger batches amortise a round trip
	// over more writes. Default 512.
	ReplicationBatch int
	// ReplicationBatchBytes caps the bytes of keys and values of one
	// replication request; a single larger record still goes alone.
	// Default 4 MiB, at most MaxReplicationBatchBytes.
	ReplicationBatchBytes int
	// ReplicationInterval is the least time between two batches to a
	// replica while writes trickle in, so that they gather into larger
	// batches; a full batch is followed at once by the next. 0 (the
	// default) ships at once; writes that arrive while a batch is in
	// flight are gathered anyway. The node binary uses 10ms.
	ReplicationInterval time.Duration
	// DropDelay is how long a node keeps the data of a partition it no
	// longer owns before deleting it, so that a new owner can still copy
	// from it. 0 keeps it forever.
	DropDelay time.Duration
	// ReplicationTimeout bounds one replication request from a primary to
	// one peer, its connect included: a peer that does not answer in time
	// (a hung process, a machine cut off) fails the request, and its
	// shipper retries it later, with a growing pause of at most 2s, while
	// the other peers' shippers go on. Default 2s.
	ReplicationTimeout time.Duration
	// MaxReplicationLag bounds the writes a primary can lose if it dies:
	// a primary refuses new writes of a partition (503) while the oldest
	// write it accepted that no ready replica of the partition has
	// acknowledged is older than this, and takes them again once one
	// replica has caught up. A partition without ready replicas in the map
	// (replication factor 1, or every replica removed as dead) is not
	// bounded. Default 1s; negative: no bound.
	MaxReplicationLag time.Duration
	// CopyTimeout bounds the copy of one partition when this node gains
	// it. Default 5m.
	CopyTimeout time.Duration
	// StreamIdleTimeout fails one copy from one source when the source
	// sends nothing for this long, its answer's headers included (a source
	// that hangs mid-stream, or a partitioned machine), so that the copy is
	// retried, from another source if there is one, instead of waiting for
	// CopyTimeout. Default 5s.
	StreamIdleTimeout time.Duration
	// WriteTimeout bounds the writing of an answer, beyond the time a
	// request may wait (for this node's map, for a partition being copied),
	// so that a client that stops reading holds its connection that long
	// only; a partition stream gets it anew for each frame it writes, so a
	// long copy that makes progress is never cut. Default 30s.
	WriteTimeout time.Duration
	// Logger receives the server's logs. Default: slog.Default().
	Logger *slog.Logger
}

// Limits of the KV API.
const (
	// MaxKeyBytes is the largest key accepted.
	MaxKeyBytes = 1 << 10
	// MaxValueBytes is the largest value accepted.
	MaxValueBytes = 1 << 20
	// MaxReplicationBatchBytes is the largest ReplicationBatchBytes: a
	// replica accepts requests of up to twice as much.
	MaxReplicationBatchBytes = 32 << 20
)

func (c *Config) fillDefaults() {
	if c.ReplicationBatch == 0 {
		c.ReplicationBatch = 512
	}
	if c.ReplicationBatchBytes == 0 {
		c.ReplicationBatchBytes = 4 << 20
	}
	if c.CopyTimeout == 0 {
		c.CopyTimeout = 5 * time.Minute
	}
	if c.StreamIdleTimeout == 0 {
		c.StreamIdleTimeout = 5 * time.Second
	}
	if c.ReplicationTimeout == 0 {
		c.ReplicationTimeout = 2 * time.Second
	}
	if c.MaxReplicationLag == 0 {
		c.MaxReplicationLag = time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate checks the fields; the error names the field.
func (c Config) Validate() error {
	switch {
	case c.DataDir == "":
		return errors.New("kv-async: DataDir is required")
	case c.ReplicationBatch < 0:
		return fmt.Errorf("kv-async: ReplicationBatch %d is negative", c.ReplicationBatch)
	case c.ReplicationBatchBytes < 0 || c.ReplicationBatchBytes > MaxReplicationBatchBytes:
		return fmt.Errorf("kv-async: ReplicationBatchBytes %d is outside 0..%d", c.ReplicationBatchBytes, MaxReplicationBatchBytes)
	case c.ReplicationInterval < 0:
		return fmt.Errorf("kv-async: ReplicationInterval %v is negative", c.ReplicationInterval)
	case c.DropDelay < 0:
		return fmt.Errorf("kv-async: DropDelay %v is negative", c.DropDelay)
	case c.SyncWindow < 0:
		return fmt.Errorf("kv-async: SyncWindow %v is negative", c.SyncWindow)
	case c.CopyTimeout < 0:
		return fmt.Errorf("kv-async: CopyTimeout %v is negative", c.CopyTimeout)
	case c.ReplicationTimeout < 0:
		return fmt.Errorf("kv-async: ReplicationTimeout %v is negative", c.ReplicationTimeout)
	case c.StreamIdleTimeout < 0:
		return fmt.Errorf("kv-async: StreamIdleTimeout %v is negative", c.StreamIdleTimeout)
	case c.WriteTimeout < 0:
		return fmt.Errorf("kv-async: WriteTimeout %v is negative", c.WriteTimeout)
	}
	return nil
}

// Server is one kv-async node. Its methods are safe for concurrent use.
type Server struct {
	cfg     Config
	ck      *clusterkit.ClusterKit
	self    string
	log     *slog.Logger
	store   *store.Store
	metrics *metrics
	repl    *replicator
	// drops deletes the partitions this node lost, DropDelay later.
	drops  *migrate.Drops
	routes map[string]route
	// peers is the keep-alive client for node-to-node requests
	// (knode.NewRequest); each bounds its own time with its context.
	peers *http.Client
	// mapVersion caches the map version header value.
	mapVersion atomic.Pointer[mapVersionValue]

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu sync.Mutex
	// gates holds the partitions this node is copying or catching up;
	// the channel is closed when the partition is ready.
	gates  map[int]chan struct{}
	closed bool
}

// New opens the store in cfg.DataDir and attaches the server to ck: its
// KV API on ck's HTTP port, its metrics on ck's registry, its partition
// event handler, and its replication loop. Call it before ck.Start.
func New(ck *clusterkit.ClusterKit, cfg Config) (*Server, error) {
	cfg.fillDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:   cfg,
		ck:    ck,
		self:  ck.GetMyNodeID(),
		log:   cfg.Logger.With("service", "kv-async"),
		peers: knode.NewClient(ck.TLSClientConfig(), 64),
		gates: map[int]chan struct{}{},
	}
	var err error
	if s.metrics, err = newMetrics(s, ck.Registry()); err != nil {
		return nil, fmt.Errorf("kv-async: register metrics: %w", err)
	}
	s.repl = newReplicator(s)
	s.store, err = store.Open(cfg.DataDir, store.Options{
		SyncWindow: cfg.SyncWindow,
		OnSync:     s.metrics.observeSync,
		// Only durable writes are shipped: the shippers may have more.
		OnDurable: s.repl.notify,
	})
	if err != nil {
		s.metrics.unregister(ck.Registry())
		return nil, fmt.Errorf("kv-async: %w", err)
	}
	// Judged inside the update that drops: a partition this node owns
	// again in the current map is kept.
	s.drops = migrate.NewDrops(dropAfter(cfg.DropDelay), ck, s.store.Drop, nil, s.metrics.dropped, s.log)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.routes = s.newRoutes()
	// The node-to-node routes are under api.InternalPrefix: with a cluster
	// token, a request without it is answered 401 before it reaches them.
	ck.Echo().Pre(api.Intercept(ck, http.HandlerFunc(s.serveKV), func(*http.Request) bool { return false }))
	ck.OnPartitionEvent(s.onPartitionEvent)
	s.goroutine(s.repl.run)
	if cfg.MaxReplicationLag > 0 {
		s.goroutine(s.repl.watchLag)
	}
	return s, nil
}

// Close stops replication and pending partition drops, waits for the
// server's goroutines and closes the store. Requests still being served
// fail; close the ClusterKit first so that none arrive. Close is safe to
// call more than once.
func (s *Server) Close() error {
	if !s.stop() {
		return nil
	}
	return s.store.Close()
}

// crash stops the server as a crash of its process would: no pending
// replication is flushed. The store is closed, which writes what its log
// holds as the operating system would keep it. For tests.
func (s *Server) crash() {
	if s.stop() {
		_ = s.store.Close()
	}
}

// stop ends everything but the store; it reports false if the server was
// already stopped.
func (s *Server) stop() bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	s.closed = true
	s.mu.Unlock()
	s.drops.Close()
	s.cancel()
	s.wg.Wait()
	s.peers.CloseIdleConnections()
	return true
}

// dropAfter is migrate.Drops' delay for DropDelay, whose 0 keeps lost
// partitions for ever.
func dropAfter(delay time.Duration) time.Duration {
	if delay == 0 {
		return -1
	}
	return delay
}

// Store returns the server's store, for inspection.
func (s *Server) Store() *store.Store { return s.store }

func (s *Server) goroutine(fn func(ctx context.Context)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn(s.ctx)
	}()
}

// role returns this node's role for p in the map p comes from.
func (s *Server) role(p *clusterkit.Partition) clusterkit.Role { return migrate.Role(p, s.self) }

// partition returns partition i of the current map, or nil.
func (s *Server) partition(i int) *clusterkit.Partition {
	parts := s.ck.Partitions()
	if i < 0 || i >= len(parts) {
		return nil
	}
	return &parts[i]
}

// awaitMap waits, at most 2s, until this node's map is at least version v:
// a request routed with a newer map than ours is judged by that map.
func (s *Server) awaitMap(ctx context.Context, v uint64) {
	if v <= s.ck.Version() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_ = s.ck.WaitForMap(ctx, v)
}

// mapVersionValue is a map version formatted as a header value.
type mapVersionValue struct {
	version uint64
	value   []string
}

// headerMapVersion is clusterkit.HeaderMapVersion in canonical form.
var headerMapVersion = http.CanonicalHeaderKey(clusterkit.HeaderMapVersion)

// setMapVersion sets the node's map version header on an answer. The
// formatted value is shared by every answer of the same version (net/http
// only reads it).
func (s *Server) setMapVersion(h http.Header) {
	v := s.ck.Version()
	mv := s.mapVersion.Load()
	if mv == nil || mv.version != v {
		mv = &mapVersionValue{version: v, value: []string{strconv.FormatUint(v, 10)}}
		s.mapVersion.Store(mv)
	}
	h[headerMapVersion] = mv.value
}

// requestMapVersion returns the map version a request was routed with.
func requestMapVersion(r *http.Request) uint64 {
	v, _ := strconv.ParseUint(r.Header.Get(clusterkit.HeaderMapVersion), 10, 64)
	return v
}

// gate marks partition p as not ready (being copied or caught up) and
// returns the function that marks it ready again.
func (s *Server) gate(p int) (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.gates[p] = ch
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		if s.gates[p] == ch {
			delete(s.gates, p)
		}
		s.mu.Unlock()
		close(ch)
	}
}

// ready returns nil when partition p is ready, or a channel closed when it
// becomes ready.
func (s *Server) ready(p int) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch, ok := s.gates[p]; ok {
		return ch
	}
	return nil
}

// Bounds of a request: maxNoBody is the most a request to a route that
// takes no body (GET) may announce (it is not read); maxRequestWait is the
// longest a handler waits before it answers (awaitMap, then awaitReady),
// to which WriteTimeout is added for the writing of the answer.
const (
	maxNoBody      = 4 << 10
	maxRequestWait = 2*time.Second + readyWait
)

// route is one endpoint of the KV API.
type route struct {
	method string
	op     string
	h      func(w http.ResponseWriter, r *http.Request, role *clusterkit.Role) error
}

func (s *Server) newRoutes() map[string]route {
	return map[string]route{
		// The application's API: open, as clients use it (POST /kv/batch
		// is the client's batch of sets and deletes, judged op by op as
		// /kv/set and /kv/delete are).
		"/kv/set":         {http.MethodPost, opSet, s.handleSet},
		"/kv/get":         {http.MethodGet, opGet, s.handleGet},
		"/kv/delete":      {http.MethodPost, opDelete, s.handleDelete},
		"/kv/batch":       {http.MethodPost, opBatch, s.handleBatch},
		"/kv/replication": {http.MethodGet, opReplicationStatus, s.handleReplicationStatus},
		// Node to node: a primary's replication batches, and the partition
		// stream a new owner copies from.
		pathReplicate: {http.MethodPost, opReplicate, s.handleReplicate},
		pathStream:    {http.MethodGet, opStream, s.handleStream},
	}
}

// serveKV serves the KV API, every path under api.Prefix, from a Pre
// middleware of the ClusterKit's echo instance (api.Intercept): before
// routing, and so before the echo-wide 1 MB body limit, which a 1 MiB
// value would exceed.
func (s *Server) serveKV(rw http.ResponseWriter, r *http.Request) {
	// An echo.Response tells writeError whether an answer has started.
	w := echo.NewResponse(rw, s.ck.Echo())
	rt, ok := s.routes[r.URL.Path]
	if !ok {
		s.setMapVersion(w.Header())
		writeError(w, errorf(http.StatusNotFound, "no endpoint %s", r.URL.Path))
		return
	}
	s.serve(w, r, rt)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, rt route) {
	start := time.Now()
	role := clusterkit.RoleNone
	var err error
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("handler panicked", "path", r.URL.Path, "panic", fmt.Sprint(p))
			err = errorf(http.StatusInternalServerError, "internal error")
			writeError(w, err)
		}
		s.metrics.Observe(rt.op, string(role), api.Result(statusOf(err)), start)
	}()
	s.setMapVersion(w.Header())
	if r.Method != rt.method {
		w.Header().Set("Allow", rt.method)
		err = errorf(http.StatusMethodNotAllowed, "%s %s: use %s", r.Method, r.URL.Path, rt.method)
		writeError(w, err)
		return
	}
	if rt.method == http.MethodGet && r.ContentLength > maxNoBody {
		err = errorf(http.StatusRequestEntityTooLarge, "%s takes no body; got %d bytes", r.URL.Path, r.ContentLength)
		writeError(w, err)
		return
	}
	if rt.op != opStream { // the stream extends its own, per frame
		_ = http.NewResponseController(w).SetWriteDeadline(start.Add(maxRequestWait + s.cfg.WriteTimeout))
	}
	if err = rt.h(w, r, &role); err != nil {
		writeError(w, err)
	}
}
