package clusterkit

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"clusterkit.dev/clusterkit/internal/state"
)

// fsm applies committed commands to the cluster state and publishes a new
// view after every change. raft calls Apply, Snapshot and Restore from one
// goroutine at a time, but the HTTP API reads the state concurrently, so mu
// guards st.
type fsm struct {
	mu sync.RWMutex
	st *state.State

	// publish is called, outside mu and in log order, with every new view.
	// It must not block.
	publish func(*view)

	// applied is the index of the last command applied and published.
	applied atomic.Uint64
}

// applyResult is what Apply returns to the proposer through the future.
type applyResult struct {
	changed bool
	version uint64
	err     error
}

func newFSM(publish func(*view)) *fsm {
	return &fsm{st: state.New(), publish: publish}
}

// Apply implements raft.FSM.
func (f *fsm) Apply(l *raft.Log) any {
	cmd, err := state.Decode(l.Data)
	if err != nil {
		return applyResult{err: fmt.Errorf("log index %d: %w", l.Index, err)}
	}
	f.mu.Lock()
	changed, err := f.st.Apply(cmd)
	var v *view
	if changed {
		v = newView(f.st, reasonOf(cmd))
	}
	version := f.st.Version
	f.mu.Unlock()
	if v != nil {
		f.publish(v)
	}
	f.applied.Store(l.Index)
	return applyResult{changed: changed, version: version, err: err}
}

// read calls fn with the current state under a read lock. fn must not keep
// or modify st.
func (f *fsm) read(fn func(st *state.State)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.st)
}

// Snapshot implements raft.FSM.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	b, err := f.st.Marshal()
	f.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("snapshot state: %w", err)
	}
	return fsmSnapshot(b), nil
}

// Restore implements raft.FSM.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	st, err := state.Unmarshal(b)
	if err != nil {
		return fmt.Errorf("decode snapshot: %w", err)
	}
	f.mu.Lock()
	f.st = st
	v := newView(st, ReasonRestore)
	f.mu.Unlock()
	f.publish(v)
	return nil
}

type fsmSnapshot []byte

func (s fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("write snapshot: %w", err)
	}
	return sink.Close()
}

func (s fsmSnapshot) Release() {}

// reasonOf says why cmd changes the map.
func reasonOf(cmd state.Command) Reason {
	switch cmd.Op {
	case state.OpSetTable:
		if cmd.Reason != "" {
			return Reason(cmd.Reason)
		}
		return ReasonRebalance
	case state.OpRemove:
		return ReasonLeave
	case state.OpJoin:
		return ReasonJoin
	case state.OpSetStatus:
		return ReasonFailure
	}
	return ReasonInitial
}
