package migrate

import (
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"clusterkit.dev/clusterkit"
)

// DropFunc deletes partition p from a store if cond, called between the
// store's writes before and after the deletion, returns true; cond is
// quick and does not call the store. It reports whether it deleted a
// partition that held data.
type DropFunc func(p int, cond func() bool) (bool, error)

// Drops deletes the data of partitions this node lost, some time later,
// unless by then the node owns the partition again or is streaming it to
// another node. It works on any store that drops a partition under a
// condition (DropFunc).
type Drops struct {
	after   time.Duration
	cluster *clusterkit.ClusterKit
	self    string
	drop    DropFunc
	table   *Table
	dropped prometheus.Counter
	log     *slog.Logger

	mu      sync.Mutex
	closed  bool
	timers  map[int]*time.Timer
	streams map[int]int
	wg      sync.WaitGroup
}

// NewDrops returns a Drops that deletes a lost partition with drop after
// after (never when negative), if the cluster's map does not name this
// node an owner of it and, when table is not nil, table still shows the
// state the partition was scheduled in. It counts the partitions it
// deletes in dropped.
func NewDrops(after time.Duration, cluster *clusterkit.ClusterKit, drop DropFunc, table *Table, dropped prometheus.Counter, log *slog.Logger) *Drops {
	return &Drops{
		after: after, cluster: cluster, self: cluster.GetMyNodeID(), drop: drop, table: table, dropped: dropped, log: log,
		timers: map[int]*time.Timer{}, streams: map[int]int{},
	}
}

// Schedule drops partition p after the delay if, with a table, its state
// is then still generation gen, with no role (without a table, gen is
// not looked at). A partition scheduled again waits the whole delay from
// then.
func (d *Drops) Schedule(p int, gen uint64) {
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
func (d *Drops) Streaming(p, delta int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.streams[p] += delta
	if d.streams[p] == 0 {
		delete(d.streams, p)
	}
}

func (d *Drops) fire(p int, gen uint64) {
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
	dropped, err := d.drop(p, func() bool {
		if d.table != nil {
			if st := d.table.Get(p); st.Gen != gen || st.Role != clusterkit.RoleNone {
				return false
			}
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
		d.dropped.Inc()
		d.log.Info("dropped lost partition", "partition", p)
	}
}

// Close cancels pending drops and waits for a running one. Schedule does
// nothing after Close.
func (d *Drops) Close() {
	d.mu.Lock()
	d.closed = true
	for _, t := range d.timers {
		t.Stop()
	}
	d.mu.Unlock()
	d.wg.Wait()
}
