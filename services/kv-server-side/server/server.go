// Package server is a key-value service built on ClusterKit with
// server-side routing: a client may send any request to any node. A node
// that is not the key's primary forwards the request to the primary over a
// pooled keep-alive connection; the primary stores the write and replicates
// it to the partition's other owners before answering (AckAll) or after
// (AckPrimary). Reads are answered by the primary, so a read that follows an
// acknowledged write returns it.
//
// Records live in the shared Pebble store (kit/records) in the node's data
// directory, one key range per partition, each with a version (partition
// epoch, sequence). When the node
// gains a partition it streams it from the previous owner and merges it by
// version, so writes that arrive during the copy are kept.
//
// The KV API shares the node's HTTP port with the ClusterKit API:
//
//	POST   /kv/set      {"key": "k", "value": "v"}  -> {"key", "version"}
//	GET    /kv/get?key=k                           -> {"key", "value", "version"}
//	POST   /kv/delete   {"key": "k"}                -> {"key", "version"}
//	DELETE /kv/key?key=k                           -> {"key", "version"}
//	POST   /kv/internal/forward                             (node to node: client requests for the primary)
//	GET    /kv/internal/stream?partition=N                  (node to node: a partition's records)
//	POST   /kv/internal/replicate                           (node to node: writes from a primary)
//
// With a cluster token, node-to-node requests need it (see auth.go).
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kit/api"
	"clusterkit.dev/services/kit/migrate"
	knode "clusterkit.dev/services/kit/node"
	"clusterkit.dev/services/kit/service"
	"clusterkit.dev/services/kv-server-side/internal/store"
)

// AckMode says when the primary answers a write.
type AckMode string

// Ack modes.
const (
	// AckAll answers once the write is on the primary's disk and every
	// other owner (replicas and joining nodes) that is in sync has
	// acknowledged it. An owner whose replication request has not answered
	// within ReplicaLagTimeout, or failed, is lagging: writes stop waiting
	// for it until it answers again. The write succeeds when a majority of
	// the partition's ready owners (primary and replicas) stored it, so it
	// survives the loss of any one node with replication factor 3; when
	// fewer than a majority are in sync it fails at once, not applied.
	AckAll AckMode = "all"
	// AckPrimary answers once the write is on the primary's disk and
	// replicates it in the background: faster, but a write acknowledged
	// just before the primary's disk is lost may be lost with it.
	AckPrimary AckMode = "primary"
)

// Config configures a Server. Zero durations take the defaults.
type Config struct {
	// DataDir is the directory of the store, kv/. Required. It may
	// be the ClusterKit DataDir: the names do not clash.
	DataDir string
	// Ack says when a write is acknowledged. Default AckAll.
	Ack AckMode
	// NoSync acknowledges writes once they are in each owner's Pebble log
	// buffer, which reaches the file when a 32 KiB block of it fills,
	// instead of on its disk: several times the write throughput, and an
	// acknowledged AckAll write still survives the crash of any one
	// machine (a majority of owners holds it, and a restarted node catches
	// up from them), but not a crash or power loss of a majority of the
	// owners at once. Default false: fsync every commit.
	NoSync bool
	// ForwardTimeout bounds a request forwarded to the primary, its
	// replication included. Default 5s.
	ForwardTimeout time.Duration
	// ReplicationTimeout bounds one replication request to an owner, and
	// how long a write waits for a majority of owners to store it.
	// Default 2s.
	ReplicationTimeout time.Duration
	// ReplicaLagTimeout is how long a replication request may go
	// unanswered before its owner is lagging: the writes waiting for it
	// complete without it, later writes do not wait for it, and it is
	// probed in the background (with the writes made meanwhile) until it
	// answers again. At most ReplicationTimeout. Default 300ms.
	ReplicaLagTimeout time.Duration
	// ForwardProbeTimeout is how long a request forwarded to a primary may
	// go unanswered before the primary is probed with an empty request of
	// the same bound: a primary that does not answer the probe is not
	// answering, and until a later probe answers, the writes forwarded to
	// it fail with 503 at once and its reads are answered by the replicas.
	// Less than ForwardTimeout. Default 300ms.
	ForwardProbeTimeout time.Duration
	// PrimaryLease is how long this node, as a partition's primary, keeps
	// serving without hearing from the raft leader (a node silent for
	// DeadTimeout, 3s by default, is failed over). Default 1.5s.
	PrimaryLease time.Duration
	// ReadyTimeout bounds how long a read waits while this node, as the
	// key's new primary, is still copying its partition. Default 5s.
	ReadyTimeout time.Duration
	// CopyTimeout bounds the copy of one partition from one node.
	// Default 2m.
	CopyTimeout time.Duration
	// CopyIdleTimeout bounds how long a copy waits for the next bytes of
	// its source: a source that stops sending fails the copy, which is
	// then retried (or taken from the other owners). Default 5s.
	CopyIdleTimeout time.Duration
	// WriteTimeout bounds the writing of an answer, beyond the time the
	// request may wait for (ForwardTimeout and ReadyTimeout), so that a
	// client that stops reading holds its connection that long only; a
	// partition stream gets it anew for each streamChunk (1 MiB) it
	// writes, so a long copy that makes progress is never cut.
	// Default 30s.
	WriteTimeout time.Duration
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
		{"ReplicaLagTimeout", c.ReplicaLagTimeout},
		{"ForwardProbeTimeout", c.ForwardProbeTimeout},
		{"ReadyTimeout", c.ReadyTimeout},
		{"PrimaryLease", c.PrimaryLease},
		{"CopyTimeout", c.CopyTimeout},
		{"CopyIdleTimeout", c.CopyIdleTimeout},
		{"WriteTimeout", c.WriteTimeout},
	} {
		if d.v < 0 {
			return fmt.Errorf("server: %s must not be negative, got %v", d.name, d.v)
		}
	}
	d := c
	d.fillDefaults()
	if d.ReplicaLagTimeout > d.ReplicationTimeout {
		return fmt.Errorf("server: ReplicaLagTimeout (%v) must not exceed ReplicationTimeout (%v)", d.ReplicaLagTimeout, d.ReplicationTimeout)
	}
	if d.ForwardProbeTimeout >= d.ForwardTimeout {
		return fmt.Errorf("server: ForwardProbeTimeout (%v) must be less than ForwardTimeout (%v)", d.ForwardProbeTimeout, d.ForwardTimeout)
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
	if c.ReplicaLagTimeout == 0 {
		c.ReplicaLagTimeout = min(300*time.Millisecond, c.ReplicationTimeout)
	}
	if c.ForwardProbeTimeout == 0 {
		c.ForwardProbeTimeout = min(300*time.Millisecond, c.ForwardTimeout/2)
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = 5 * time.Second
	}
	if c.PrimaryLease == 0 {
		c.PrimaryLease = 1500 * time.Millisecond
	}
	if c.CopyTimeout == 0 {
		c.CopyTimeout = 2 * time.Minute
	}
	if c.CopyIdleTimeout == 0 {
		c.CopyIdleTimeout = 5 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 30 * time.Second
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
	unc    *uncommitted // writes of this primary not yet on a majority
	routes api.Routes
	parts  *migrate.Table
	copier *migrate.Copier[store.Version]
	drops  *migrate.Dropper[store.Version]

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
	st, err := store.Open(filepath.Join(cfg.DataDir, "kv"), store.Options{NoSync: cfg.NoSync})
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
		client: knode.NewClient(ck.TLSClientConfig(), 128),
		parts:  migrate.NewTable(),
		ctx:    ctx,
		cancel: cancel,
	}
	s.nodes = newNodeClient(ck.TLSClientConfig(), s.authHeader())
	s.repl = newReplicator(s)
	s.unc = newUncommitted()
	s.fwd = newForwarder(s)
	s.copier = migrate.NewCopier(migrate.Config[store.Version]{
		Cluster: ck, Store: st.Store, Version: store.VersionOf, Limits: streamLimits,
		Send: func(ctx context.Context, n *clusterkit.Node, method, uri string) (*http.Response, error) {
			return s.send(ctx, n, method, uri, nil)
		},
		CopyTimeout: cfg.CopyTimeout, IdleTimeout: cfg.CopyIdleTimeout,
		Need: s.copySources, Restarted: s.restarted,
		Metrics: m.migrate, Log: s.log,
	})
	s.drops = migrate.NewDropper(cfg.DropAfter, ck, st.Store, s.parts, m.migrate, s.log)
	s.routes = api.Routes{
		"/kv/set":                {Method: http.MethodPost, Handle: m.Counted(opSet, s.handleSet)},
		"/kv/get":                {Method: http.MethodGet, Handle: m.Counted(opGet, s.handleGet)},
		"/kv/delete":             {Method: http.MethodPost, Handle: m.Counted(opDelete, s.handleDelete)},
		"/kv/key":                {Method: http.MethodDelete, Handle: m.Counted(opDelete, s.handleDeleteKey)},
		"/kv/internal/stream":    {Method: http.MethodGet, Handle: s.streamHandler().ServeHTTP},
		"/kv/internal/replicate": {Method: http.MethodPost, Handle: s.handleReplicate},
		"/kv/internal/forward":   {Method: http.MethodPost, Handle: s.handleForward},
	}
	service.Attach(ck, s, nodeToNode, s.handleEvent, st.Size)
	return s, nil
}

// Close stops the service's background work and closes the store. Call it
// after the node's ClusterKit has stopped, so that no request is still
// being served. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.drops.Close()
		s.fwd.close()
		s.repl.close()
		s.client.CloseIdleConnections()
		s.nodes.close()
		s.closeErr = s.store.Close()
	})
	return s.closeErr
}

// ServeHTTP serves the KV API. Until the node is ready
// (migrate.Table.NotReady) it answers 503 at once, but for streams: a copy
// from a node that is starting gets what it holds.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	handle := s.routes.Find(w, r, s.ck.Version())
	if handle == nil {
		return
	}
	limit := bodyLimit(r.URL.Path)
	if r.ContentLength > limit {
		s.writeError(w, errTooLarge(fmt.Sprintf("request body is %d bytes; the limit of %s is %d", r.ContentLength, r.URL.Path, limit)))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if r.URL.Path != "/kv/internal/stream" { // the stream extends its own, per chunk
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.answerWriteTimeout()))
	}
	if r.URL.Path != "/kv/internal/stream" {
		if why := s.parts.NotReady(s.ck); why != "" {
			s.m.Refuse(w, s.ck.Version(), opOf(r.URL.Path), roleNone, "node starting: "+why)
			return
		}
	}
	handle(w, r)
}

// Bounds of the KV API's request bodies (a body over its route's bound is
// refused with 413, read no further) and of the time to write an answer.
const (
	// maxBatchBody bounds a node-to-node batch (/kv/internal/replicate,
	// /kv/internal/forward): the largest a sender builds is maxBatchBytes of keys
	// and values, plus one more key and value, plus each record's framing.
	maxBatchBody = 8 << 20
	// maxNoBody bounds the body of a route that takes none (reads,
	// DELETE /kv/key, streams): it is not read.
	maxNoBody = 4 << 10
)

// bodyLimit returns the bound of path's request body.
func bodyLimit(path string) int64 {
	switch path {
	case "/kv/set", "/kv/delete":
		return maxBody
	case "/kv/internal/replicate", "/kv/internal/forward":
		return maxBatchBody
	}
	return maxNoBody
}

// answerWriteTimeout bounds the time from the start of a request's handler
// to the end of its answer's writing: a client that stops reading holds
// its own connection for that long only.
func (s *Server) answerWriteTimeout() time.Duration {
	return s.cfg.ForwardTimeout + s.cfg.ReadyTimeout + s.cfg.WriteTimeout
}

// opOf returns the metrics label of a client KV path, "" for the node to
// node paths.
func opOf(path string) string {
	switch path {
	case "/kv/set":
		return opSet
	case "/kv/get":
		return opGet
	case "/kv/delete", "/kv/key":
		return opDelete
	}
	return ""
}
