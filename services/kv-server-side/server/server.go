// Package server is a key-value service built on ClusterKit with
// server-side routing: a client may send any request to any node. A node
// that is not the key's primary forwards the request to the primary over a
// pooled keep-alive connection; the primary stores the write and replicates
// it to the partition's other owners before answering (AckAll) or after
// (AckPrimary). Reads are answered by the primary, so a read that follows an
// acknowledged write returns it.
//
// Records live in a bbolt file in the node's data directory, one bucket per
// partition, each with a version (partition epoch, sequence). When the node
// gains a partition it streams it from the previous owner and merges it by
// version, so writes that arrive during the copy are kept.
//
// The KV API shares the node's HTTP port with the ClusterKit API:
//
//	POST   /kv/set      {"key": "k", "value": "v"}  -> {"key", "version"}
//	GET    /kv/get?key=k                           -> {"key", "value", "version"}
//	POST   /kv/delete   {"key": "k"}                -> {"key", "version"}
//	DELETE /kv/key?key=k                           -> {"key", "version"}
//	POST   /kv/forward                             (node to node: client requests for the primary)
//	GET    /kv/stream?partition=N                  (node to node: a partition's records)
//	POST   /kv/replicate                           (node to node: writes from a primary)
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kv-server-side/internal/store"
)

// AckMode says when the primary answers a write.
type AckMode string

// Ack modes.
const (
	// AckAll answers once the write is on the primary's disk and every
	// other owner (replicas and joining nodes) has acknowledged it. An
	// owner that fails or does not answer within ReplicationTimeout is
	// given up on; the write still succeeds when a majority of the
	// partition's ready owners (primary and replicas) stored it, so it
	// survives the loss of any one node with replication factor 3.
	AckAll AckMode = "all"
	// AckPrimary answers once the write is on the primary's disk and
	// replicates it in the background: faster, but a write acknowledged
	// just before the primary's disk is lost may be lost with it.
	AckPrimary AckMode = "primary"
)

// Config configures a Server. Zero durations take the defaults.
type Config struct {
	// DataDir is the directory of the store file, kv.db. Required. It may
	// be the ClusterKit DataDir: the file names do not clash.
	DataDir string
	// Ack says when a write is acknowledged. Default AckAll.
	Ack AckMode
	// NoSync acknowledges writes once they are in each owner's page cache
	// instead of on its disk: several times the write throughput, and an
	// acknowledged AckAll write still survives the crash of any one
	// machine (a majority of owners holds it), but not a power loss of a
	// majority of the owners at once. Default false: fsync every commit.
	NoSync bool
	// ForwardTimeout bounds a request forwarded to the primary, its
	// replication included. Default 5s.
	ForwardTimeout time.Duration
	// ReplicationTimeout bounds how long the primary waits for an owner to
	// acknowledge a write before it gives up on that owner. Default 2s.
	ReplicationTimeout time.Duration
	// ReadyTimeout bounds how long a read waits while this node, as the
	// key's new primary, is still copying its partition. Default 5s.
	ReadyTimeout time.Duration
	// CopyTimeout bounds the copy of one partition from one node.
	// Default 2m.
	CopyTimeout time.Duration
	// DropAfter is how long the node keeps the data of a partition it lost
	// before deleting it, in case another node is still copying from it.
	// Default 10m; negative keeps lost partitions for ever.
	DropAfter time.Duration
	// Logger receives the service's logs. Default slog.Default().
	Logger *slog.Logger
}

// Validate checks c; the error names the field.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("server: DataDir is required")
	}
	switch c.Ack {
	case "", AckAll, AckPrimary:
	default:
		return fmt.Errorf("server: Ack must be %q or %q, got %q", AckAll, AckPrimary, c.Ack)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ForwardTimeout", c.ForwardTimeout},
		{"ReplicationTimeout", c.ReplicationTimeout},
		{"ReadyTimeout", c.ReadyTimeout},
		{"CopyTimeout", c.CopyTimeout},
	} {
		if d.v < 0 {
			return fmt.Errorf("server: %s must not be negative, got %v", d.name, d.v)
		}
	}
	return nil
}

func (c *Config) fillDefaults() {
	if c.Ack == "" {
		c.Ack = AckAll
	}
	if c.ForwardTimeout == 0 {
		c.ForwardTimeout = 5 * time.Second
	}
	if c.ReplicationTimeout == 0 {
		c.ReplicationTimeout = 2 * time.Second
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = 5 * time.Second
	}
	if c.CopyTimeout == 0 {
		c.CopyTimeout = 2 * time.Minute
	}
	if c.DropAfter == 0 {
		c.DropAfter = 10 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Server is the KV service of one node.
type Server struct {
	ck    *clusterkit.ClusterKit
	self  string
	cfg   Config
	log   *slog.Logger
	store *store.Store
	clock *clock
	m     *metrics

	client *http.Client // fallback reads, copies
	nodes  *nodeClient  // forwarded and replicated batches
	fwd    *forwarder
	repl   *replicator
	parts  *partitions
	drops  *dropper

	gainedMu sync.Mutex
	gained   map[int]bool // partitions gained since the server started

	// ctx is cancelled by Close; background work (replication, copies)
	// runs under it.
	ctx    context.Context
	cancel context.CancelFunc

	closeOnce sync.Once
	closeErr  error
}

// New opens the store in cfg.DataDir and attaches the service to ck: its
// routes on ck's HTTP server, its metrics on ck's registry and its
// partition event handler. Call it before ck.Start, so that the handler sees
// every change; call Close after ck.Stop.
func New(ck *clusterkit.ClusterKit, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.fillDefaults()
	m, err := newMetrics(ck.Registry())
	if err != nil {
		return nil, err
	}
	st, err := store.Open(filepath.Join(cfg.DataDir, "kv.db"), store.Options{NoSync: cfg.NoSync})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		ck:     ck,
		self:   ck.GetMyNodeID(),
		cfg:    cfg,
		log:    cfg.Logger.With("service", "kv-server-side"),
		store:  st,
		clock:  newClock(st.MaxSeq()),
		m:      m,
		client: newClient(),
		nodes:  newNodeClient(),
		parts:  newPartitions(),
		gained: map[int]bool{},
		ctx:    ctx,
		cancel: cancel,
	}
	s.repl = newReplicator(s)
	s.fwd = newForwarder(s)
	s.drops = newDropper(s)
	ck.Echo().Pre(s.intercept)
	ck.OnPartitionEvent(s.handleEvent)
	return s, nil
}

// Close stops the service's background work and closes the store. Call it
// after the node's ClusterKit has stopped, so that no request is still
// being served. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.drops.close()
		s.fwd.close()
		s.repl.close()
		s.client.CloseIdleConnections()
		s.nodes.close()
		s.closeErr = s.store.Close()
	})
	return s.closeErr
}

// intercept serves the KV API ahead of the library's router. The KV API
// applies its own body limits: the library caps its own request bodies at
// 1 MiB, less than a 1 MiB value in its JSON envelope.
func (s *Server) intercept(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if !strings.HasPrefix(r.URL.Path, "/kv/") {
			return next(c)
		}
		s.ServeHTTP(c.Response().Writer, r)
		return nil
	}
}

// ServeHTTP serves the KV API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var method string
	var handle func(http.ResponseWriter, *http.Request)
	switch r.URL.Path {
	case "/kv/set":
		method, handle = http.MethodPost, s.handleSet
	case "/kv/get":
		method, handle = http.MethodGet, s.handleGet
	case "/kv/delete":
		method, handle = http.MethodPost, s.handleDelete
	case "/kv/key":
		method, handle = http.MethodDelete, s.handleDeleteKey
	case "/kv/stream":
		method, handle = http.MethodGet, s.handleStream
	case "/kv/replicate":
		method, handle = http.MethodPost, s.handleReplicate
	case "/kv/forward":
		method, handle = http.MethodPost, s.handleForward
	default:
		s.writeJSON(w, http.StatusNotFound, errorBody{Error: "no such endpoint: " + r.URL.Path})
		return
	}
	if r.Method != method {
		w.Header().Set("Allow", method)
		s.writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: r.URL.Path + " accepts " + method + " only"})
		return
	}
	handle(w, r)
}

// newClient returns the client of node-to-node requests: keep-alive
// connections pooled per node, a short dial timeout so that a dead node is
// noticed at once, and per-request deadlines from contexts.
func newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
}
