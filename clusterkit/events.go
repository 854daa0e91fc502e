package clusterkit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// PartitionChangeHook is called on a node that gains a partition, with the
// partition ID, a live node that held the partition before the change
// (copyFrom, nil when the partition had no owner, as in the first map), and
// this node (copyTo).
type PartitionChangeHook func(partitionID string, copyFrom, copyTo *Node)

// dispatcher delivers partition changes to the hooks of one node, in map
// version order, on its own goroutine: the FSM only appends to the queue, so
// a slow hook never blocks raft's apply loop, and no library lock is held
// while a hook runs, so a hook may call back into ClusterKit.
type dispatcher struct {
	self    string
	log     *slog.Logger
	metrics *metrics

	mu    sync.Mutex
	queue []*view
	hooks []PartitionChangeHook // replaced, never modified in place
	wake  chan struct{}

	// last is the view the hooks have been told about. Only run touches it.
	last *view
}

func newDispatcher(self string, log *slog.Logger, m *metrics) *dispatcher {
	return &dispatcher{self: self, log: log, metrics: m, wake: make(chan struct{}, 1)}
}

// addHook registers h for every change not yet delivered.
func (d *dispatcher) addHook(h PartitionChangeHook) {
	d.mu.Lock()
	defer d.mu.Unlock()
	hooks := make([]PartitionChangeHook, len(d.hooks), len(d.hooks)+1)
	copy(hooks, d.hooks)
	d.hooks = append(hooks, h)
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
			hooks := d.hooks
			d.mu.Unlock()
			d.deliver(ctx, hooks, v)
			if ctx.Err() != nil {
				return
			}
		}
	}
}

// deliver calls the hooks for every partition this node owns in v and did
// not own in the last delivered view.
func (d *dispatcher) deliver(ctx context.Context, hooks []PartitionChangeHook, v *view) {
	prev := d.last
	d.last = v
	if !v.hasMap() {
		return
	}
	self := v.nodes[d.self]
	if self == nil {
		return
	}
	for i := range v.partitions {
		p := &v.partitions[i]
		if !p.owns(d.self) {
			continue
		}
		old := prev.partition(i)
		if old != nil && old.owns(d.self) {
			continue
		}
		from := copySource(old, v)
		for _, h := range hooks {
			if ctx.Err() != nil {
				return
			}
			d.call(h, p.ID, from, self)
		}
	}
}

// copySource picks the node to copy a gained partition from: the previous
// primary if it is still a member and not dead, else the first such previous
// replica, else nil.
func copySource(old *Partition, v *view) *Node {
	if old == nil {
		return nil
	}
	candidates := append([]string{old.PrimaryNode}, old.ReplicaNodes...)
	for _, id := range candidates {
		if n := v.nodes[id]; n != nil && n.State != NodeDead {
			return n
		}
	}
	return nil
}

func (d *dispatcher) call(h PartitionChangeHook, pid string, from, to *Node) {
	start := time.Now()
	result := "ok"
	defer func() {
		if r := recover(); r != nil {
			result = "panic"
			d.log.Error("partition change hook panicked", "partition", pid, "panic", fmt.Sprint(r))
		}
		d.metrics.observeHook(result, time.Since(start))
	}()
	h(pid, from, to)
}
