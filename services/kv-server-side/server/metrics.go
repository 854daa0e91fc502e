package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"clusterkit.dev/services/kit/api"
	"clusterkit.dev/services/kit/migrate"
)

// metrics are the service's Prometheus collectors, registered on the node's
// registry (ClusterKit.Registry) so that one scrape of /metrics covers the
// library and the service. Every name starts with "kvss_".
type metrics struct {
	*api.RequestMetrics

	replBatches *prometheus.CounterVec
	replRecords *prometheus.CounterVec
	replBatch   prometheus.Histogram
	replLag     prometheus.Histogram
	replPending prometheus.Gauge

	fwdBatch *prometheus.HistogramVec

	migrate *migrate.Metrics // partition copies and drops
}

// Labels of kvss_requests_total and kvss_request_duration_seconds.
const (
	// op
	opSet    = "set"
	opGet    = "get"
	opDelete = "delete"

	// role: how this node handled the request.
	rolePrimary  = "primary"  // served as the key's primary
	roleForward  = "forward"  // forwarded to the primary
	roleFallback = "fallback" // read from the replicas: the primary did not answer
	roleLocal    = "local"    // local=true read of this node's store
	roleNone     = "none"     // refused before routing (bad input, no map)
	// result: api.Result of the answer's status
)

// requestRoles are the roles each operation is counted with: only a read
// falls back to the replicas or reads this node's store alone.
var requestRoles = map[string][]string{
	opSet:    {roleNone, rolePrimary, roleForward},
	opGet:    {roleNone, rolePrimary, roleForward, roleFallback, roleLocal},
	opDelete: {roleNone, rolePrimary, roleForward},
}

// Results of kvss_replication_records_total: a write acknowledged by an
// owner, refused by it (it knows a newer primary, or does not own the
// partition), failed (no answer, or the owner failed recently) or dropped
// (the owner's queue was full).
const (
	replOK         = "ok"
	replStaleEpoch = "stale_epoch"
	replNotOwner   = "not_owner"
	replFailed     = "failed"
	replDropped    = "dropped"
)

// Kinds of kvss_forward_batch_ops.
const (
	fwdRead  = "read"
	fwdWrite = "write"
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		RequestMetrics: api.NewRequestMetrics("kvss", requestRoles,
			"KV requests received by this node, by operation, role (primary, forward, fallback, local, none) and result.",
			"Time to answer a KV request, forwarding and replication included, by operation and role."),
		replBatches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvss_replication_batches_total",
			Help: "Replication requests sent by this node as primary, by result (ok, error).",
		}, []string{"result"}),
		replRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvss_replication_records_total",
			Help: "Writes sent to other owners, by result (ok, stale_epoch, not_owner, failed, dropped).",
		}, []string{"result"}),
		replBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kvss_replication_batch_records",
			Help:    "Writes carried by one replication request.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		fwdBatch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kvss_forward_batch_ops",
			Help:    "Client requests carried by one forwarded batch to a primary, by kind (read, write).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 9),
		}, []string{"kind"}),
		replLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kvss_replication_lag_seconds",
			Help:    "Time from a write's commit on the primary to its acknowledgement by another owner.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		replPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kvss_replication_pending",
			Help: "Writes committed on this primary and not yet acknowledged (or given up) by another owner.",
		}),
		migrate: migrate.NewMetrics("kvss"),
	}
	// Every label combination exists from the start, at 0.
	for _, r := range []string{api.ResultOK, api.ResultError} {
		m.replBatches.WithLabelValues(r)
	}
	for _, r := range []string{replOK, replStaleEpoch, replNotOwner, replFailed, replDropped} {
		m.replRecords.WithLabelValues(r)
	}
	for _, kind := range []string{fwdRead, fwdWrite} {
		m.fwdBatch.WithLabelValues(kind)
	}
	own := []prometheus.Collector{m.replBatches, m.replRecords, m.replBatch, m.replLag, m.replPending, m.fwdBatch}
	if err := api.Register(reg, "kvss", append(append(m.Collectors(), own...), m.migrate.Collectors()...)...); err != nil {
		return nil, err
	}
	return m, nil
}
