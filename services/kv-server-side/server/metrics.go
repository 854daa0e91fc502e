package server

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"clusterkit.dev/services/kit/migrate"
)

// metrics are the service's Prometheus collectors, registered on the node's
// registry (ClusterKit.Registry) so that one scrape of /metrics covers the
// library and the service. Every name starts with "kvss_".
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec

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

	// result
	resultOK          = migrate.ResultOK
	resultNotFound    = "not_found"
	resultBadRequest  = "bad_request"
	resultTooLarge    = "too_large"
	resultNotOwner    = "not_owner"
	resultUnavailable = "unavailable"
	resultError       = migrate.ResultError
)

// requestRoles are the roles each operation is counted with: only a read
// falls back to the replicas or reads this node's store alone.
var requestRoles = map[string][]string{
	opSet:    {roleNone, rolePrimary, roleForward},
	opGet:    {roleNone, rolePrimary, roleForward, roleFallback, roleLocal},
	opDelete: {roleNone, rolePrimary, roleForward},
}

// results are the values of the result label of kvss_requests_total.
var results = []string{resultOK, resultNotFound, resultBadRequest, resultTooLarge,
	resultNotOwner, resultUnavailable, resultError}

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
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvss_requests_total",
			Help: "KV requests received by this node, by operation, role (primary, forward, fallback, local, none) and result.",
		}, []string{"op", "role", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kvss_request_duration_seconds",
			Help:    "Time to answer a KV request, forwarding and replication included, by operation and role.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"op", "role"}),
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
	// Every label combination exists from the start, at 0, so that a rate
	// sees the first event and a query of a failure has a series to show.
	for op, roles := range requestRoles {
		for _, role := range roles {
			m.latency.WithLabelValues(op, role)
			for _, r := range results {
				m.requests.WithLabelValues(op, role, r)
			}
		}
	}
	for _, r := range []string{resultOK, resultError} {
		m.replBatches.WithLabelValues(r)
	}
	for _, r := range []string{replOK, replStaleEpoch, replNotOwner, replFailed, replDropped} {
		m.replRecords.WithLabelValues(r)
	}
	for _, kind := range []string{fwdRead, fwdWrite} {
		m.fwdBatch.WithLabelValues(kind)
	}
	for _, c := range append([]prometheus.Collector{
		m.requests, m.latency, m.replBatches, m.replRecords, m.replBatch, m.replLag, m.replPending, m.fwdBatch,
	}, m.migrate.Collectors()...) {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, errors.New("kvss metrics are already registered on this node's registry: one server per ClusterKit")
			}
			return nil, err
		}
	}
	return m, nil
}

// observe counts one finished request.
func (m *metrics) observe(op, role, result string, start time.Time) {
	m.requests.WithLabelValues(op, role, result).Inc()
	m.latency.WithLabelValues(op, role).Observe(time.Since(start).Seconds())
}
