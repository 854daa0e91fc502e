package clusterkit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Role is a node's role for one partition.
type Role string

// Roles.
const (
	// RoleNone: the node does not own the partition.
	RoleNone Role = "none"
	// RolePrimary: the node is the partition's primary owner.
	RolePrimary Role = "primary"
	// RoleReplica: the node is a replica owner.
	RoleReplica Role = "replica"
	// RoleJoining: the node is being added as an owner and must copy the
	// partition from the event's CopyFrom; it becomes a replica once its
	// handlers return nil.
	RoleJoining Role = "joining"
)

// Reason says why a partition moved.
type Reason string

// Reasons.
const (
	// ReasonInitial: the first map of the cluster.
	ReasonInitial Reason = "initial"
	// ReasonJoin: a node joined.
	ReasonJoin Reason = "join"
	// ReasonLeave: a node left or was removed.
	ReasonLeave Reason = "leave"
	// ReasonFailure: a node was declared dead.
	ReasonFailure Reason = "failure"
	// ReasonRebalance: the table was rebalanced.
	ReasonRebalance Reason = "rebalance"
	// ReasonDrain: a node is being drained.
	ReasonDrain Reason = "drain"
	// ReasonRestore: the node restarted and replays what it owns.
	ReasonRestore Reason = "restore"
)

// PartitionEvent tells a node that its role for a partition changed.
type PartitionEvent struct {
	// PartitionID is "partition-<Partition>".
	PartitionID string
	// Partition is the partition number.
	Partition int
	// Version is the map version of the change.
	Version uint64
	// Epoch is the partition's epoch after the change; it increases
	// whenever the primary changes.
	Epoch uint64
	// OldRole and NewRole are this node's roles before and after.
	OldRole, NewRole Role
	// CopyFrom is set when this node gains the partition's data
	// (OldRole is RoleNone): a live node that owned the partition before
	// the change. It is nil when no previous owner is alive, as for a new
	// partition.
	CopyFrom *Node
	// Reason says why the partition moved.
	Reason Reason
}

// PartitionEventHandler handles a PartitionEvent. When the event gives this
// node a partition, the handler copies the data from ev.CopyFrom and
// returns nil when the copy is done. An error is logged and counted. ctx is
// cancelled when the node stops.
type PartitionEventHandler func(ctx context.Context, ev PartitionEvent) error

// PartitionChangeHook is called on a node that gains a partition, with the
// partition ID, a live node that held the partition before the change
// (copyFrom, nil when the partition had no owner, as in the first map), and
// this node (copyTo).
type PartitionChangeHook func(partitionID string, copyFrom, copyTo *Node)

// dispatcher delivers partition events to the handlers of one node, in map
// version order, on its own goroutine: the FSM only appends to the queue, so
// a slow handler never blocks raft's apply loop, and no library lock is held
// while a handler runs, so a handler may call back into ClusterKit.
type dispatcher struct {
	self    string
	log     *slog.Logger
	metrics *metrics

	mu       sync.Mutex
	queue    []*view
	handlers []PartitionEventHandler // replaced, never modified in place
	wake     chan struct{}

	// last is the view the handlers have been told about. Only run
	// touches it.
	last *view
}

func newDispatcher(self string, log *slog.Logger, m *metrics) *dispatcher {
	return &dispatcher{self: self, log: log, metrics: m, wake: make(chan struct{}, 1)}
}

// addHandler registers h for every change not yet delivered.
func (d *dispatcher) addHandler(h PartitionEventHandler) {
	d.mu.Lock()
	defer d.mu.Unlock()
	hs := make([]PartitionEventHandler, len(d.handlers), len(d.handlers)+1)
	copy(hs, d.handlers)
	d.handlers = append(hs, h)
}

// push queues a new view. It never blocks.
func (d *dispatcher) push(v *view) {
	d.mu.Lock()
	d.queue = append(d.queue, v)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// run delivers queued views until ctx is done.
func (d *dispatcher) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		}
		for {
			d.mu.Lock()
			if len(d.queue) == 0 {
				d.mu.Unlock()
				break
			}
			v := d.queue[0]
			d.queue[0] = nil
			d.queue = d.queue[1:]
			handlers := d.handlers
			d.mu.Unlock()
			for _, ev := range d.diff(v) {
				for _, h := range handlers {
					if ctx.Err() != nil {
						return
					}
					d.call(ctx, h, ev)
				}
			}
		}
	}
}

// diff returns the events of this node between the last delivered view and
// v, in partition order, and makes v the last delivered view.
func (d *dispatcher) diff(v *view) []PartitionEvent {
	prev := d.last
	d.last = v
	if !v.hasMap() || v.nodes[d.self] == nil {
		return nil
	}
	var events []PartitionEvent
	for i := range v.partitions {
		p := &v.partitions[i]
		old := prev.partition(i)
		oldRole, newRole := old.role(d.self), p.role(d.self)
		if oldRole == newRole {
			continue
		}
		ev := PartitionEvent{
			PartitionID: p.ID, Partition: i, Version: v.version, Epoch: p.Epoch,
			OldRole: oldRole, NewRole: newRole, Reason: v.reason,
		}
		if oldRole == RoleNone {
			ev.CopyFrom = copySource(old, v, d.self)
		}
		events = append(events, ev)
	}
	return events
}

// copySource picks the node to copy a gained partition from: the previous
// primary if it is still a member and not dead, else the first such previous
// replica, else nil.
func copySource(old *Partition, v *view, self string) *Node {
	if old == nil {
		return nil
	}
	candidates := append([]string{old.PrimaryNode}, old.ReplicaNodes...)
	for _, id := range candidates {
		if n := v.nodes[id]; n != nil && id != self && n.State != NodeDead {
			return n
		}
	}
	return nil
}

func (d *dispatcher) call(ctx context.Context, h PartitionEventHandler, ev PartitionEvent) {
	start := time.Now()
	result := "ok"
	defer func() {
		if r := recover(); r != nil {
			result = "panic"
			d.log.Error("partition handler panicked", "partition", ev.PartitionID, "panic", fmt.Sprint(r))
		}
		d.metrics.observeHook(result, time.Since(start))
	}()
	if err := h(ctx, ev); err != nil {
		result = "error"
		d.log.Warn("partition handler failed", "partition", ev.PartitionID, "err", err)
	}
}
