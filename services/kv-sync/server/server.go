// Package server is the storage node of kv-sync, a key-value service built
// on ClusterKit with client-side quorums: the client (package client)
// writes every key to all of its partition's owners and waits for a
// majority, and reads from a majority, returning the newest version and
// writing it back to owners that lag (the ABD protocol). Once a write is
// acknowledged, no later read returns an older value.
//
// A node stores versioned records in the kit's record store (Pebble, in
// its data directory, a key range per partition), and keeps only the
// newest version of each key, so replica writes are idempotent and may
// arrive in any order. It serves replica requests only for partitions it
// owns in its map, and answers 421 (clusterkit.StatusNotOwner) otherwise.
// When it gains a partition it streams it from the previous owner and
// merges it by version.
//
// For clients without the SDK (curl), a node also runs quorum operations
// itself, with the same client, when a request carries no version:
//
//	POST   /kv/set      {"key", "value", "version"}  replica write, by the client
//	POST   /kv/set      {"key", "value"}             quorum write, run by this node
//	GET    /kv/get?key=k&local=true                  replica read, by the client
//	GET    /kv/get?key=k                             quorum read, run by this node
//	POST   /kv/delete   {"key", "version"}           replica delete (a tombstone)
//	POST   /kv/delete   {"key"}                      quorum delete, run by this node
//	DELETE /kv/key?key=k                             quorum delete, run by this node
//	POST   /kv/batch                                 many replica reads and writes (package batch)
//	GET    /kv/internal/stream?partition=N           node to node: a partition's records
package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"github.com/cockroachdb/pebble/v2/vfs"
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
	"clusterkit.dev/services/kv-sync/client/lagmetrics"
	"clusterkit.dev/services/kv-sync/internal/store"
)

// Defaults of Config.
const (
	defaultQuorumTimeout = 5 * time.Second
	defaultCallTimeout   = time.Second
)

// Config configures a Server. Zero durations take the defaults.
type Config struct {
	// DataDir is the directory of the store, kv/. Required. It may
	// be the ClusterKit DataDir: the names do not clash.
	DataDir string
	// FS is the file system of the store. Default: the operating
	// system's. Tests cut the power with pebble's vfs.NewCrashableMem.
	FS vfs.FS
	// ClusterToken is the cluster's token (ClusterKit's ClusterToken),
	// which the node's own quorums send to the owners. The requests of a
	// quorum (versioned writes, owner reads, batches) and partition streams
	// need it whenever ClusterKit has one.
	ClusterToken string
	// NoSync acknowledges replica writes once they are in Pebble's log
	// buffer, which reaches the file when a 32 KiB block of it fills,
	// instead of on disk: several times the write throughput; an
	// acknowledged write then survives the crash of any minority of
	// machines (a restarted node catches up from the others), but not a
	// crash or power loss of a majority of a partition's owners at once.
	// Default false: fsync every commit.
	NoSync bool
	// QuorumTimeout bounds a quorum operation this node runs for a request
	// without a version. Default 5s.
	QuorumTimeout time.Duration
	// CallTimeout bounds each request of such an operation to one owner,
	// its connect included (the connect alone gets at most 500ms): an
	// owner that does not answer in time counts as failed, and the
	// operation goes on with the others. It must not exceed QuorumTimeout
	// and should be well under it. Default 1s, or QuorumTimeout if shorter.
	CallTimeout time.Duration
	// CopyTimeout bounds the copy of one partition from one node.
	// Default 2m.
	CopyTimeout time.Duration
	// StreamIdleTimeout fails the copy of a partition when its source sends
	// nothing for this long, its answer's headers included (a source that
	// hangs mid-stream, or a partitioned machine), so that the copy is
	// retried instead of waiting for CopyTimeout. Default 5s.
	StreamIdleTimeout time.Duration
	// MapLease is how long the node keeps serving the KV API (as a
	// coordinator and as an owner) without hearing from the raft leader, or
	// after such a gap until its map has caught up (ClusterKit's
	// LeaderContact). A node cut off from the cluster, with the map it had,
	// could otherwise form a quorum with another cut-off owner of that old
	// map while the cluster has moved the partition to other owners. It
	// should stay under DeadTimeout, the least time in which the cluster
	// fails a silent node over. Default 1.5s.
	MapLease time.Duration
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
	if c.QuorumTimeout < 0 {
		return fmt.Errorf("server: QuorumTimeout must not be negative, got %v", c.QuorumTimeout)
	}
	if c.CallTimeout < 0 {
		return fmt.Errorf("server: CallTimeout must not be negative, got %v", c.CallTimeout)
	}
	if c.CallTimeout > 0 && c.CallTimeout > cmp.Or(c.QuorumTimeout, defaultQuorumTimeout) {
		return fmt.Errorf("server: CallTimeout (%v) must not exceed QuorumTimeout (%v)",
			c.CallTimeout, cmp.Or(c.QuorumTimeout, defaultQuorumTimeout))
	}
	if c.CopyTimeout < 0 {
		return fmt.Errorf("server: CopyTimeout must not be negative, got %v", c.CopyTimeout)
	}
	if c.StreamIdleTimeout < 0 {
		return fmt.Errorf("server: StreamIdleTimeout must not be negative, got %v", c.StreamIdleTimeout)
	}
	if c.MapLease < 0 {
		return fmt.Errorf("server: MapLease must not be negative, got %v", c.MapLease)
	}
	return nil
}

func (c *Config) fillDefaults() {
	if c.QuorumTimeout == 0 {
		c.QuorumTimeout = defaultQuorumTimeout
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = min(defaultCallTimeout, c.QuorumTimeout)
	}
	if c.CopyTimeout == 0 {
		c.CopyTimeout = 2 * time.Minute
	}
	if c.StreamIdleTimeout == 0 {
		c.StreamIdleTimeout = 5 * time.Second
	}
	if c.MapLease == 0 {
		c.MapLease = 1500 * time.Millisecond
	}
	if c.DropAfter == 0 {
		c.DropAfter = 10 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Server is the kv-sync service of one node.
type Server struct {
	ck    *clusterkit.ClusterKit
	self  string
	cfg   Config
	log   *slog.Logger
	store *store.Store
	m     *metrics

	client *http.Client
	routes api.Routes
	parts  *migrate.Table
	copier *migrate.Copier[store.Version]
	drops  *migrate.Dropper[store.Version]
	coord  *coordinator

	// ctx is cancelled by Close; background work runs under it.
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
	st, err := store.Open(filepath.Join(cfg.DataDir, "kv"), store.Options{NoSync: cfg.NoSync, FS: cfg.FS})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		ck:     ck,
		self:   ck.GetMyNodeID(),
		cfg:    cfg,
		log:    cfg.Logger.With("service", "kv-sync"),
		store:  st,
		m:      m,
		client: knode.NewClient(ck.TLSClientConfig(), 16),
		parts:  migrate.NewTable(),
		ctx:    ctx,
		cancel: cancel,
	}
	s.copier = migrate.NewCopier(migrate.Config[store.Version]{
		Cluster: ck, Store: st, Version: store.VersionOf, Limits: streamLimits,
		Send:        s.send,
		CopyTimeout: cfg.CopyTimeout, IdleTimeout: cfg.StreamIdleTimeout,
		Need:    copySources,
		Metrics: m.migrate, Log: s.log,
	})
	s.drops = migrate.NewDropper(cfg.DropAfter, ck, st, s.parts, m.migrate, s.log)
	s.routes = api.Routes{
		"/kv/set":             {Method: http.MethodPost, Handle: m.Counted(opSet, s.handleSet)},
		"/kv/get":             {Method: http.MethodGet, Handle: m.Counted(opGet, s.handleGet)},
		"/kv/delete":          {Method: http.MethodPost, Handle: m.Counted(opDelete, s.handleDelete)},
		"/kv/key":             {Method: http.MethodDelete, Handle: m.Counted(opDelete, s.handleDeleteKey)},
		"/kv/internal/stream": {Method: http.MethodGet, Handle: s.streamHandler().ServeHTTP},
		"/kv/batch":           {Method: http.MethodPost, Handle: s.handleBatch},
	}
	s.coord = newCoordinator(s)
	// The lag of every node of the map and of the owners its quorums wrote to.
	if err := ck.Registry().Register(lagmetrics.NewCollector(s.coord.lag)); err != nil {
		cancel()
		_ = st.Close()
		return nil, fmt.Errorf("register the replication lag metrics: %w", err)
	}
	// Batches and replica reads are a client's quorum's: they need the
	// cluster token, as node-to-node requests do.
	service.Attach(ck, s, func(r *http.Request) bool {
		return r.URL.Path == "/kv/batch" || r.URL.Path == "/kv/get" && r.URL.Query().Has("local")
	}, s.handleEvent, st.Size)
	return s, nil
}

// Close stops the service's background work and closes the store. Call it
// after the node's ClusterKit has stopped, so that no request is still
// being served. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.coord.close()
		s.drops.Close()
		s.client.CloseIdleConnections()
		s.closeErr = s.store.Close()
	})
	return s.closeErr
}

// ServeHTTP serves the KV API. Until the node is ready
// (migrate.Table.NotReady), and while its map is not known to be current
// (MapLease), it answers 503 at once, but for streams: a copy from a node
// that is starting gets what it holds.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	handle := s.routes.Find(w, r, s.ck.Version())
	if handle == nil {
		return
	}
	// An answer must be written within writeTimeout; a stream extends
	// its deadline as it goes.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(writeTimeout))
	if r.URL.Path != "/kv/internal/stream" {
		why := s.parts.NotReady(s.ck)
		if why != "" {
			why = "node starting: " + why
		} else if since := time.Since(s.ck.LeaderContact()); since > s.cfg.MapLease {
			why = fmt.Sprintf("this node has not heard from the raft leader for %v (MapLease %v): its map may be old",
				since.Round(time.Millisecond), s.cfg.MapLease)
		}
		if why != "" {
			s.m.Refuse(w, s.ck.Version(), opOf(r.URL.Path), roleNone, why)
			return
		}
	}
	handle(w, r)
}

// writeTimeout bounds the writing of an answer (a stream: of each page).
const writeTimeout = 30 * time.Second

// authorized reports whether r, a replica write of a client's quorum,
// carries the cluster token; if not, it answers 401. (Batches, streams and
// replica reads are guarded before they are routed: see New.)
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.ck.CheckToken(r, r.URL.Path) {
		return true
	}
	s.writeError(w, api.Unauthorized())
	return false
}

// opOf returns the metrics label of a KV path.
func opOf(path string) string {
	switch path {
	case "/kv/set":
		return opSet
	case "/kv/get":
		return opGet
	case "/kv/batch":
		return opBatch
	}
	return opDelete
}

// send sends a node-to-node request with this node's map version.
func (s *Server) send(ctx context.Context, node *clusterkit.Node, method, uri string) (*http.Response, error) {
	req, err := knode.NewRequest(ctx, s.ck, node, method, uri, nil)
	if err != nil {
		return nil, err
	}
	return s.client.Do(req)
}
