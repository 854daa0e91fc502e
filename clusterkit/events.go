package clusterkit

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
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
// node a partition (NewRole RoleJoining), the handler copies the data from
// ev.CopyFrom and returns nil when the copy is done; an error is logged,
// counted and the handler retried with backoff until the handoff ends.
// Errors on other events are logged and counted. ctx ends when the node
// stops or the handoff is abandoned; Stop waits for running handlers, so a
// handler must return soon after ctx ends.
type PartitionEventHandler func(ctx context.Context, ev PartitionEvent) error

// PartitionChangeHook is called on a node that gains a partition, with the
// partition ID, a live node that held the partition before the change
// (copyFrom, nil when the partition had no owner, as in the first map), and
// this node (copyTo).
type PartitionChangeHook func(partitionID string, copyFrom, copyTo *Node)

// dispatcher delivers partition events to the handlers of one node. The
// FSM only appends views to its queue, so a slow handler never blocks
// raft's apply loop. Events of one partition are handled in map version
// order by a goroutine of that partition, so one slow partition does not
// stall the others. No library lock is held while a handler runs, so a
// handler may call back into ClusterKit.
type dispatcher struct {
	self    string
	log     *slog.Logger
	metrics *metrics
	// ready reports that this node finished copying partition; joining
	// tells whether this node is still joining partition in the current
	// map. Both are the ClusterKit's.
	ready   func(ctx context.Context, partition int) error
	joining func(partition int) bool

	mu    sync.Mutex
	queue []*view
	// While replaying, after a restart, views are not diffed: only the
	// last is kept, and when the replay ends the handlers are told what
	// this node owns then (reason restore).
	replaying bool
	replayed  *view
	handlers  []PartitionEventHandler // replaced, never modified in place
	parts     map[int]*partQueue
	wake      chan struct{}
	workers   sync.WaitGroup

	// last is the view the handlers have been told about. Only run
	// touches it.
	last *view
	// delivered is, per partition, the map version of the last event
	// handed to the handlers (under mu): deliveries must never go back.
	delivered map[int]uint64
}

// partQueue holds the pending events of one partition.
type partQueue struct {
	events []queued
	// cancel ends the context of the event being handled.
	cancel  context.CancelFunc
	current *PartitionEvent
}

type queued struct {
	ev       PartitionEvent
	handlers []PartitionEventHandler
}

// retryBackoff bounds the pause between retries of a failed copy or ready
// report.
const (
	minRetry = 50 * time.Millisecond
	maxRetry = 2 * time.Second
)

func newDispatcher(self string, log *slog.Logger, m *metrics) *dispatcher {
	return &dispatcher{self: self, log: log, metrics: m, wake: make(chan struct{}, 1), parts: map[int]*partQueue{},
		delivered: map[int]uint64{}}
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
	if d.replaying {
		d.replayed = v
		d.mu.Unlock()
		return
	}
	d.queue = append(d.queue, v)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// beginReplay holds events back while a restarted node replays its log.
func (d *dispatcher) beginReplay() {
	d.mu.Lock()
	d.replaying = true
	d.mu.Unlock()
}

// endReplay queues the state the replay reached, as a restore.
func (d *dispatcher) endReplay() {
	d.mu.Lock()
	d.replaying = false
	if v := d.replayed; v != nil {
		rv := *v
		rv.reason = ReasonRestore
		d.queue = append(d.queue, &rv)
		d.replayed = nil
	}
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// run turns queued views into events until ctx is done, then waits for the
// partition goroutines to return.
func (d *dispatcher) run(ctx context.Context) {
	defer d.workers.Wait()
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
				d.enqueue(ctx, queued{ev: ev, handlers: handlers})
			}
		}
	}
}

// enqueue appends an event to its partition's queue, starting the
// partition's goroutine if it is idle. An event that ends a joining role
// cancels the copy still running for it.
func (d *dispatcher) enqueue(ctx context.Context, q queued) {
	d.mu.Lock()
	defer d.mu.Unlock()
	pq := d.parts[q.ev.Partition]
	if pq == nil {
		pq = &partQueue{}
		d.parts[q.ev.Partition] = pq
		d.workers.Add(1)
		go d.work(ctx, q.ev.Partition, pq)
	}
	if pq.current != nil && pq.current.NewRole == RoleJoining && q.ev.OldRole == RoleJoining {
		pq.cancel()
	}
	pq.events = append(pq.events, q)
}

// work handles one partition's events in order and exits when none is
// left.
func (d *dispatcher) work(ctx context.Context, partition int, pq *partQueue) {
	defer d.workers.Done()
	for {
		d.mu.Lock()
		if len(pq.events) == 0 || ctx.Err() != nil {
			delete(d.parts, partition)
			d.mu.Unlock()
			return
		}
		q := pq.events[0]
		pq.events = pq.events[1:]
		evCtx, cancel := context.WithCancel(ctx)
		pq.current, pq.cancel = &q.ev, cancel
		d.mu.Unlock()

		d.handle(evCtx, q)
		cancel()
		d.mu.Lock()
		pq.current, pq.cancel = nil, nil
		d.mu.Unlock()
	}
}

// handle runs the handlers for one event. For a joining event it retries
// failed handlers and then reports this node ready, until that succeeds or
// the node is no longer joining the partition.
func (d *dispatcher) handle(ctx context.Context, q queued) {
	d.checkOrder(q.ev)
	if q.ev.NewRole != RoleJoining {
		for _, h := range q.handlers {
			d.call(ctx, h, q.ev)
		}
		return
	}
	backoff := minRetry
	pause := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxRetry)
		return d.joining(q.ev.Partition)
	}
	for done := 0; done < len(q.handlers); {
		if d.call(ctx, q.handlers[done], q.ev) {
			done++
		} else if !pause() {
			return
		}
	}
	backoff = minRetry
	for ctx.Err() == nil && d.joining(q.ev.Partition) {
		err := d.ready(ctx, q.ev.Partition)
		if err == nil {
			return
		}
		d.log.Debug("ready report failed", "partition", q.ev.PartitionID, "err", err)
		if !pause() {
			return
		}
	}
}

// checkOrder records the delivery of ev and counts it in
// clusterkit_hook_deliveries_out_of_order_total if its partition already
// had an event of a newer map version delivered: the order the handlers
// are promised, checked where it is kept, so that tests from outside (the
// fault suite) can see it held.
func (d *dispatcher) checkOrder(ev PartitionEvent) {
	d.mu.Lock()
	last := d.delivered[ev.Partition]
	if ev.Version > last {
		d.delivered[ev.Partition] = ev.Version
	}
	d.mu.Unlock()
	if ev.Version < last {
		d.metrics.hookOutOfOrder.Inc()
		d.log.Error("partition event delivered out of order", "partition", ev.PartitionID, "version", ev.Version, "after", last)
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
		oldRole, newRole := roleOf(old, d.self), roleOf(p, d.self)
		if oldRole == newRole {
			continue
		}
		ev := PartitionEvent{
			PartitionID: p.ID, Partition: i, Version: v.version, Epoch: p.Epoch,
			OldRole: oldRole, NewRole: newRole, Reason: v.reason,
		}
		// A node restored from its own data already holds what it owned;
		// only an unfinished handoff still needs its copy. A partition
		// that had no owner in the previous version (the cluster's first
		// table) has no data anywhere to copy.
		if oldRole == RoleNone && !unowned(old) && (v.reason != ReasonRestore || newRole == RoleJoining) {
			ev.CopyFrom = copySource(old, p, v.owners[i].joiningFrom, v, d.self)
		}
		events = append(events, ev)
	}
	return events
}

// unowned reports whether p is a partition of a map in which it has no
// owner at all; nil (no map before) is not.
func unowned(p *Partition) bool {
	return p != nil && p.PrimaryNode == "" && len(p.ReplicaNodes) == 0 && len(p.JoiningNodes) == 0
}

// copySource picks the node to copy a gained partition from: the source
// the leader chose for this node's handoff (joiningFrom: cur's copy
// sources, by joining node) if it is alive, else the
// previous primary, else a previous replica, else the current primary;
// only members that are not dead and not this node qualify; nil if none.
func copySource(old, cur *Partition, joiningFrom []string, v *view, self string) *Node {
	var candidates []string
	if k := slices.Index(cur.JoiningNodes, self); k >= 0 && joiningFrom[k] != "" {
		candidates = append(candidates, joiningFrom[k])
	}
	if old != nil {
		candidates = append(candidates, old.PrimaryNode)
		candidates = append(candidates, old.ReplicaNodes...)
	}
	candidates = append(candidates, cur.PrimaryNode)
	candidates = append(candidates, cur.ReplicaNodes...)
	for _, id := range candidates {
		if n := v.nodes[id]; n != nil && id != self && n.State != NodeDead {
			return n
		}
	}
	return nil
}

// call runs one handler and reports whether it succeeded.
func (d *dispatcher) call(ctx context.Context, h PartitionEventHandler, ev PartitionEvent) (ok bool) {
	start := time.Now()
	result := "ok"
	defer func() {
		if r := recover(); r != nil {
			result = "panic"
			ok = false
			d.log.Error("partition handler panicked", "partition", ev.PartitionID, "panic", fmt.Sprint(r))
		}
		d.metrics.observeHook(result, time.Since(start))
	}()
	if err := h(ctx, ev); err != nil {
		result = "error"
		d.log.Warn("partition handler failed", "partition", ev.PartitionID, "role", ev.NewRole, "err", err)
		return false
	}
	return true
}
