// Package clusterkit tells each node of a distributed application which
// partition a key is in, which node is primary and which are replicas, and
// calls the application back when partitions move, so that it copies its
// data. Membership and the partition map are replicated with raft; the
// application owns storage and replication.
package clusterkit

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
)

// ClusterKit is one node's handle on the cluster. Build it with
// NewClusterKit, start it with Start and stop it with Stop (or Leave). All
// methods are safe for concurrent use.
type ClusterKit struct {
	opts *resolved
	log  *slog.Logger

	// view is the current map; replaced, never modified.
	view atomic.Pointer[view]
	// viewChanged is closed and replaced whenever view changes, so that
	// watchers (long-polls, WaitFor) wake without polling.
	viewChanged atomic.Pointer[chan struct{}]

	fsm      *fsm
	events   *dispatcher
	detector *detector
	target   targetCache
	metrics  *metrics
	echo     *echo.Echo
	client   *http.Client

	// formation is the node's part in forming a cluster (BootstrapExpect).
	formation formation
	// ctlWake wakes the leader's controller after a change.
	ctlWake chan struct{}
	// tls is the node's TLS setup; nil without TLS.
	tls *tlsSetup
	// joinMu serialises membership changes on the leader.
	joinMu sync.Mutex
	// ready batches handoff completions on the leader.
	ready readyBatch
	// lease keeps LeaderContact honest across gaps in contact.
	lease lease
	// sizes is the application's PartitionSizeFunc, if it set one.
	sizes atomic.Pointer[PartitionSizeFunc]
	// planMu makes the leader's plan steps and handoff completions read
	// and change the state one at a time, so that neither commits a
	// decision made from a state the other has just changed.
	planMu sync.Mutex

	mu       sync.Mutex // guards the fields below
	rn       *raftNode
	httpSrv  *http.Server
	started  bool
	stopped  bool
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	isMember bool
}

// NewClusterKit validates opts, applies defaults and builds a node. It
// starts nothing: no listener, no goroutine, no file is opened until Start.
func NewClusterKit(opts Options) (*ClusterKit, error) {
	o, err := resolveOptions(opts)
	if err != nil {
		return nil, err
	}
	sec, err := loadTLS(o.TLS)
	if err != nil {
		return nil, err
	}
	ck := &ClusterKit{
		opts:    o,
		log:     o.Logger,
		ctlWake: make(chan struct{}, 1),
		lease:   newLease(),
		ready:   readyBatch{wake: make(chan struct{}, 1)},
		tls:     sec,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			Proxy: nil, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}},
	}
	if sec != nil {
		ck.client.Transport.(*http.Transport).TLSClientConfig = sec.client
	}
	ch := make(chan struct{})
	ck.viewChanged.Store(&ch)
	ck.metrics = newMetrics(ck)
	ck.events = newDispatcher(o.NodeID, o.Logger, ck.metrics)
	ck.events.ready, ck.events.joining = ck.reportReady, ck.joiningNow
	ck.fsm = newFSM(ck.publish)
	ck.detector = newDetector(ck.wakeController)
	ck.echo = ck.newEcho()
	return ck, nil
}

// publish installs a new view; called by the FSM in log order.
func (ck *ClusterKit) publish(v *view) {
	ck.view.Store(v)
	ck.events.push(v)
	next := make(chan struct{})
	old := ck.viewChanged.Swap(&next)
	close(*old)
	select {
	case ck.ctlWake <- struct{}{}:
	default:
	}
}

// Start opens the data directory, starts raft and the HTTP API, and makes
// the node a member: it bootstraps a new cluster (Bootstrap, no saved
// state), resumes from saved state, takes part in forming a cluster
// (BootstrapExpect, no saved state) or asks the JoinAddr members to add it.
// Start returns once the node is a member, or with an error: the join was
// refused (for example a taken ID, or cluster settings that differ from the
// cluster's) or no member accepted within JoinTimeout. With BootstrapExpect
// it waits for the other nodes without a deadline; Stop ends the wait. On
// error everything started is stopped again.
func (ck *ClusterKit) Start() error {
	ck.mu.Lock()
	if ck.stopped {
		ck.mu.Unlock()
		return ErrStopped
	}
	if ck.started {
		ck.mu.Unlock()
		return ErrAlreadyStarted
	}
	ck.started = true
	ctx, cancel := context.WithCancel(context.Background())
	ck.cancel = cancel
	ck.mu.Unlock()

	if err := ck.start(ctx); err != nil {
		ck.log.Error("start failed", "err", err)
		_ = ck.Stop()
		return err
	}
	return nil
}

func (ck *ClusterKit) start(ctx context.Context) error {
	ln, err := net.Listen("tcp", ck.opts.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on HTTPAddr %s: %w", ck.opts.HTTPAddr, err)
	}
	if ck.tls != nil {
		ln = tls.NewListener(ln, ck.tls.http)
	}
	srv := &http.Server{Handler: ck.echo, ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: idleTimeout}
	rn, err := openRaft(ck.opts, ck.fsm, func(hadState bool) {
		// A restarted node replays its log before its handlers hear of it.
		if hadState {
			ck.events.beginReplay()
		}
	}, ck.tls, func() { ck.metrics.unauthorized.WithLabelValues("raft").Inc() })
	if err != nil {
		ln.Close()
		return err
	}
	ck.mu.Lock()
	ck.rn = rn
	ck.httpSrv = srv
	ck.mu.Unlock()
	if !rn.hadState && ck.opts.BootstrapExpect > 0 {
		// Waiting, with any promise of an earlier run, before the first
		// request is served.
		if err := ck.beginFormation(); err != nil {
			ln.Close()
			return err
		}
	}

	ck.goroutine(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			ck.log.Error("http server", "err", err)
		}
	})
	ck.goroutine(func() { ck.events.run(ctx) })
	ck.goroutine(func() { ck.awaitReplay(ctx, rn) })
	ck.goroutine(func() { ck.runController(ctx) })
	ck.goroutine(func() { ck.runReady(ctx) })
	ck.goroutine(func() { ck.detector.observe(ctx, rn) })
	ck.goroutine(func() { ck.watchLease(ctx, 100*time.Millisecond) })

	switch {
	case rn.hadState:
		ck.log.Info("resuming from saved state", "data_dir", ck.opts.DataDir)
		// A node removed while it was away joins again; for a member the
		// join is a no-op. It runs in the background: after a full
		// restart there is no leader until enough nodes are back.
		if len(ck.opts.joinAddrs) > 0 {
			ck.goroutine(func() {
				if err := ck.join(ctx); err != nil && ctx.Err() == nil {
					ck.log.Warn("rejoin after restart", "err", err)
				}
			})
		}
	case ck.opts.Bootstrap:
		ck.log.Info("bootstrapping a new cluster")
		if err := rn.bootstrap(ck.opts); err != nil {
			return err
		}
	case ck.opts.BootstrapExpect > 0:
		if err := ck.form(ctx, rn); err != nil {
			return fmt.Errorf("form a cluster: %w", err)
		}
	default:
		if err := ck.join(ctx); err != nil {
			return err
		}
	}
	ck.mu.Lock()
	ck.isMember = true
	ck.mu.Unlock()
	return nil
}

// awaitReplay ends the event replay once the FSM has applied the log the
// node restarted with (at once for a new node). raft's AppliedIndex is not
// enough: raft counts entries as applied when it hands them to the FSM.
func (ck *ClusterKit) awaitReplay(ctx context.Context, rn *raftNode) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for rn.hadState && ck.fsm.applied.Load() < rn.replayTo {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	ck.events.endReplay()
}

func (ck *ClusterKit) goroutine(fn func()) {
	ck.wg.Add(1)
	go func() {
		defer ck.wg.Done()
		fn()
	}()
}

// Stop stops the node without leaving the cluster: the others see it as
// unreachable until it starts again from its DataDir. Stop waits for every
// goroutine of the node, including a running hook, to return. It is safe to
// call more than once.
func (ck *ClusterKit) Stop() error {
	ck.mu.Lock()
	if ck.stopped {
		ck.mu.Unlock()
		return nil
	}
	ck.stopped = true
	cancel, srv, rn := ck.cancel, ck.httpSrv, ck.rn
	ck.mu.Unlock()

	if cancel != nil {
		cancel()
	}
	var errs []error
	if srv != nil {
		ctx, done := context.WithTimeout(context.Background(), 2*time.Second)
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
		done()
	}
	if rn != nil {
		if err := rn.close(); err != nil {
			errs = append(errs, err)
		}
	}
	ck.wg.Wait()
	ck.client.CloseIdleConnections()
	return errors.Join(errs...)
}

// raftNode returns the running raft node, or nil before Start.
func (ck *ClusterKit) raftNode() *raftNode {
	ck.mu.Lock()
	defer ck.mu.Unlock()
	return ck.rn
}

// Echo returns the echo instance that serves the HTTP API, so that an
// application can serve its own routes on the same port. Add routes before
// Start.
func (ck *ClusterKit) Echo() *echo.Echo { return ck.echo }
