package migrate

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kit/records"
	"clusterkit.dev/services/kit/stream"
)

// Dropper is Drops on a records.Store, which also serves the partition
// stream from that store (Send), keeping a partition while it streams.
type Dropper[V records.Version[V]] struct {
	*Drops
	store   *records.Store[V]
	metrics *Metrics
}

// NewDropper returns a dropper that deletes a lost partition after after
// (never when negative), from st, if table still shows the state it was
// scheduled in and the cluster's map does not name this node an owner.
func NewDropper[V records.Version[V]](after time.Duration, cluster *clusterkit.ClusterKit, st *records.Store[V], table *Table, m *Metrics, log *slog.Logger) *Dropper[V] {
	return &Dropper[V]{Drops: NewDrops(after, cluster, st.DropIf, table, m.dropped, log), store: st, metrics: m}
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
