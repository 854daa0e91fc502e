package clusterkit

import (
	"errors"
	"fmt"

	"clusterkit.dev/clusterkit/internal/state"
)

// Sentinel errors returned by ClusterKit. Compare with errors.Is.
var (
	// ErrNoPartitionMap is returned by GetPartition before this node has
	// received a partition map (it has not joined yet, or the cluster has no
	// nodes that can own partitions).
	ErrNoPartitionMap = errors.New("clusterkit: no partition map yet")
	// ErrNotStarted is returned by methods that need Start to have run.
	ErrNotStarted = errors.New("clusterkit: not started")
	// ErrStopped is returned after Stop.
	ErrStopped = errors.New("clusterkit: stopped")
	// ErrAlreadyStarted is returned by a second Start.
	ErrAlreadyStarted = errors.New("clusterkit: already started")
	// ErrNoLeader is returned when an operation needs the raft leader and
	// none is known.
	ErrNoLeader = errors.New("clusterkit: no leader")
	// ErrNotLeader is returned when an operation must run on the leader.
	ErrNotLeader = errors.New("clusterkit: not the leader")
	// ErrUnknownNode is returned for a node ID that is not a member.
	ErrUnknownNode = state.ErrUnknownNode
	// ErrConflict is returned when a join reuses another node's ID or
	// address, or when the joiner's cluster settings differ from the
	// cluster's.
	ErrConflict = state.ErrConflict
	// ErrStaleVersion is returned when a command was computed from an older
	// map version than the one committed; the caller recomputes and retries.
	ErrStaleVersion = state.ErrStaleVersion
)

// FieldError reports an invalid option or request field. Field names the
// option ("ReplicationFactor") or JSON field ("key").
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("clusterkit: invalid %s: %s", e.Field, e.Reason)
}

// HTTPError is an error answer from a node's HTTP API.
type HTTPError struct {
	Code    int
	Message string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("http %d: %s", e.Code, e.Message)
}
