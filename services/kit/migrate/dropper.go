package migrate

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kit/records"
	"clusterkit.dev/services/kit/stream"
)

// Dropper deletes the data of partitions this node lost, some time later,
// unless the node owns the partition again by then or is streaming it to
// another node.
type Dropper[V records.Version[V]] struct {
	after   time.Duration
	cluster *clusterkit.ClusterKit
	self    string
	store   *records.Store[V]
	table   *Table
	metrics *Metrics
	log     *slog.Logger

	mu      sync.Mutex
	closed  bool
	timers  map[int]*time.Timer
	streams map[int]int
	wg      sync.WaitGroup
}

// NewDropper returns a dropper that deletes a lost partition after after
// (never when negative), from st, if table still shows the state it was
// scheduled in and the cluster's map does not name this node an owner.
func NewDropper[V records.Version[V]](after time.Duration, cluster *clusterkit.ClusterKit, st *records.Store[V], table *Table, m *Metrics, log *slog.Logger) *Dropper[V] {
	return &Dropper[V]{
		after: after, cluster: cluster, self: cluster.GetMyNodeID(), store: st, table: table, metrics: m, log: log,
		timers: map[int]*time.Timer{}, streams: map[int]int{},
	}
}

// Schedule drops partition p after the delay if its state is then still
// generation gen, with no role.
func (d *Dropper[V]) Schedule(p int, gen uint64) {
	if d.after < 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	if t := d.timers[p]; t != nil {
		t.Stop()
	}
	d.timers[p] = time.AfterFunc(d.after, func() { d.fire(p, gen) })
}

// Streaming counts the streams of partition p in progress (delta +1 when
// one starts, -1 when it ends): a partition being streamed is kept.
func (d *Dropper[V]) Streaming(p, delta int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.streams[p] += delta
	if d.streams[p] == 0 {
		delete(d.streams, p)
	}
}

func (d *Dropper[V]) fire(p int, gen uint64) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	delete(d.timers, p)
	d.wg.Add(1)
	d.mu.Unlock()
	defer d.wg.Done()

	// The condition runs in the store's writer, between the writes
	// submitted before and after: a write made as owner under a newer map
	// was submitted after that map was published, so either it comes
	// after the drop or the condition sees the map that made it.
	dropped, err := d.store.DropIf(p, func() bool {
		if st := d.table.Get(p); st.Gen != gen || st.Role != clusterkit.RoleNone {
			return false
		}
		if parts := d.cluster.Partitions(); p < len(parts) && Owner(&parts[p], d.self) {
			return false
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.streams[p] == 0
	})
	switch {
	case err != nil:
		d.log.Warn("drop lost partition", "partition", p, "err", err)
	case dropped:
		d.metrics.dropped.Inc()
		d.log.Info("dropped lost partition", "partition", p)
	}
}

// Close cancels pending drops and waits for a running one.
func (d *Dropper[V]) Close() {
	d.mu.Lock()
	d.closed = true
	for _, t := range d.timers {
		t.Stop()
	}
	d.mu.Unlock()
	d.wg.Wait()
}

// Send answers a stream request for partition p (stream.Send) from the
// store, keeping the partition while it streams and counting the bytes
// sent in Metrics.
func (d *Dropper[V]) Send(ctx context.Context, w http.ResponseWriter, p int, writeTimeout time.Duration) (stream.Sent, error) {
	d.Streaming(p, 1)
	defer d.Streaming(p, -1)
	sent, err := stream.Send(ctx, w, d.store, p, writeTimeout)
	d.metrics.streamed.Add(float64(sent.Bytes))
	return sent, err
}

// PartitionParam returns the partition a stream request names in its
// query (partition=N), which must be below count.
func PartitionParam(r *http.Request, count int) (int, error) {
	raw := r.URL.Query().Get("partition")
	p, err := strconv.Atoi(raw)
	if err != nil || p < 0 || p >= count {
		return 0, fmt.Errorf("partition must be a number from 0 to %d, got %q", count-1, raw)
	}
	return p, nil
}
