package clusterkit

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// raftNode bundles raft with the stores and transport it was built on, so
// that they can be closed together.
type raftNode struct {
	*raft.Raft
	store     *raftStore
	transport *raft.NetworkTransport
	logw      io.Closer
	// hadState is true when the node started from saved state, and
	// replayTo is then the index of the last command in its saved log that
	// its latest snapshot does not hold (0 if none): the FSM has caught up
	// with the saved state once it has applied replayTo.
	hadState bool
	replayTo uint64
}

// openRaft opens the stores in dataDir, binds the transport and starts
// raft; beforeStart learns whether there is saved state before raft
// restores it. On error everything opened so far is closed.
func openRaft(o *resolved, f raft.FSM, beforeStart func(hadState bool), sec *tlsSetup, onRefused func()) (_ *raftNode, err error) {
	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create DataDir: %w", err)
	}
	rn := &raftNode{}
	defer func() {
		if err != nil {
			rn.close()
		}
	}()
	db, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(o.DataDir, "raft.db")})
	if err != nil {
		return nil, fmt.Errorf("open raft store: %w", err)
	}
	rn.store = &raftStore{db: db}
	w := newLogWriter(o.Logger)
	rn.logw = w
	snaps, err := raft.NewFileSnapshotStore(o.DataDir, 2, w)
	if err != nil {
		return nil, fmt.Errorf("open snapshot store: %w", err)
	}
	adv, err := net.ResolveTCPAddr("tcp", o.RaftAdvertise)
	if err != nil {
		return nil, &FieldError{Field: "RaftAdvertise", Reason: err.Error()}
	}
	scfg := streamConfig{token: o.ClusterToken, timeout: raftIOTimeout(&o.cfg), onRefused: onRefused}
	if sec != nil {
		scfg.serverTLS, scfg.clientTLS = sec.raft, sec.client
	}
	stream, err := newStreamLayer(o.RaftAddr, adv, scfg)
	if err != nil {
		return nil, fmt.Errorf("raft transport on %s: %w", o.RaftAddr, err)
	}
	rn.transport = raft.NewNetworkTransport(stream, 5, raftIOTimeout(&o.cfg), w)
	rn.hadState, err = raft.HasExistingState(rn.store, rn.store, snaps)
	if err != nil {
		return nil, fmt.Errorf("read raft state: %w", err)
	}
	if rn.hadState {
		if rn.replayTo, err = lastCommand(rn.store, snaps); err != nil {
			return nil, err
		}
	}
	beforeStart(rn.hadState)

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(o.NodeID)
	rc.HeartbeatTimeout = o.cfg.HeartbeatTimeout
	rc.ElectionTimeout = o.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = o.cfg.LeaderLeaseTimeout
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: w})
	rn.Raft, err = raft.NewRaft(rc, f, rn.store, rn.store, snaps, rn.transport)
	if err != nil {
		return nil, fmt.Errorf("start raft: %w", err)
	}
	return rn, nil
}

// lastCommand returns the index of the last command entry in the log that
// is newer than the latest snapshot, or 0. Configuration and no-op entries
// never reach the FSM, so the log's last index is not what to wait for.
func lastCommand(logs raft.LogStore, snaps raft.SnapshotStore) (uint64, error) {
	var snapIndex uint64
	metas, err := snaps.List()
	if err != nil {
		return 0, fmt.Errorf("list snapshots: %w", err)
	}
	if len(metas) > 0 {
		snapIndex = metas[0].Index
	}
	first, err := logs.FirstIndex()
	if err != nil {
		return 0, fmt.Errorf("read raft log: %w", err)
	}
	last, err := logs.LastIndex()
	if err != nil {
		return 0, fmt.Errorf("read raft log: %w", err)
	}
	for i := last; i >= max(first, 1) && i > snapIndex; i-- {
		var l raft.Log
		if err := logs.GetLog(i, &l); err != nil {
			return 0, fmt.Errorf("read raft log entry %d: %w", i, err)
		}
		if l.Type == raft.LogCommand {
			return i, nil
		}
	}
	return 0, nil
}

// bootstrap founds a single-voter cluster of this node. It is a no-op when
// the node has saved state.
func (rn *raftNode) bootstrap(o *resolved) error {
	if rn.hadState {
		return nil
	}
	err := rn.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter,
		ID:       raft.ServerID(o.NodeID),
		Address:  raft.ServerAddress(o.RaftAdvertise),
	}}}).Error()
	if err != nil && err != raft.ErrCantBootstrap {
		return fmt.Errorf("bootstrap: %w", err)
	}
	return nil
}

// close shuts raft down and closes the stores. Safe on a partly opened node.
func (rn *raftNode) close() error {
	var first error
	if rn.Raft != nil {
		if err := rn.Shutdown().Error(); err != nil {
			first = fmt.Errorf("raft shutdown: %w", err)
		}
	}
	if rn.transport != nil {
		if err := rn.transport.Close(); err != nil && first == nil {
			first = fmt.Errorf("raft transport: %w", err)
		}
	}
	if rn.store != nil {
		if err := rn.store.Close(); err != nil && first == nil {
			first = fmt.Errorf("raft store: %w", err)
		}
	}
	if rn.logw != nil {
		rn.logw.Close()
	}
	return first
}

// configuration returns raft's current server list.
func (rn *raftNode) configuration() ([]raft.Server, error) {
	f := rn.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	return f.Configuration().Servers, nil
}

// logWriter turns raft's line-oriented logs into slog records.
type logWriter struct {
	pw   *io.PipeWriter
	done chan struct{}
}

func newLogWriter(l *slog.Logger) *logWriter {
	pr, pw := io.Pipe()
	w := &logWriter{pw: pw, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			level := slog.LevelInfo
			switch {
			case strings.Contains(line, "[ERROR]"):
				level = slog.LevelError
			case strings.Contains(line, "[WARN]"):
				level = slog.LevelWarn
			case strings.Contains(line, "[DEBUG]"), strings.Contains(line, "[TRACE]"):
				level = slog.LevelDebug
			}
			l.Log(context.Background(), level, line, "component", "raft")
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	return w
}

func (w *logWriter) Write(p []byte) (int, error) { return w.pw.Write(p) }

func (w *logWriter) Close() error {
	err := w.pw.Close()
	<-w.done
	return err
}

// raftIOTimeout is the I/O deadline of raft's RPCs: half DeadTimeout, at
// least 500ms. A node that accepts connections and never answers (paused,
// cut off by the network, stalled) fails the leader's heartbeat after it,
// which is how the detector hears of it: with raft's usual 10s the node
// would be declared dead 10s after it went silent instead of DeadTimeout.
// Snapshot installs scale the deadline with their size.
func raftIOTimeout(c *Config) time.Duration {
	return max(c.DeadTimeout/2, 500*time.Millisecond)
}
