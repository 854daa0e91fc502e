package server

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"clusterkit.dev/services/kit/migrate"
)

// metrics are the service's Prometheus collectors, registered on the node's
// registry (ClusterKit.Registry) so that one scrape of /metrics covers the
// library and the service. Every name starts with "kvsync_".
type metrics struct {
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	batchOps    prometheus.Histogram
	staleWrites prometheus.Counter

	migrate *migrate.Metrics // partition copies and drops
}

// Labels of kvsync_requests_total and kvsync_request_duration_seconds.
const (
	// op
	opSet    = "set"
	opGet    = "get"
	opDelete = "delete"
	opBatch  = "batch"

	// role: how this node served the request.
	roleReplica     = "replica"     // a versioned write or local read of a client's quorum
	roleCoordinator = "coordinator" // a request without version, run as a quorum by this node
	roleNone        = "none"        // refused before it was routed (bad input)

	// result
	resultOK          = migrate.ResultOK
	resultNotFound    = "not_found"
	resultBadRequest  = "bad_request"
	resultTooLarge    = "too_large"
	resultNotOwner    = "not_owner"
	resultUnavailable = "unavailable"
	resultError       = migrate.ResultError
)

// requestRoles are the roles each operation is counted with: a batch is
// always part of a client's quorum (role replica), a refused one included.
var requestRoles = map[string][]string{
	opSet:    {roleNone, roleReplica, roleCoordinator},
	opGet:    {roleNone, roleReplica, roleCoordinator},
	opDelete: {roleNone, roleReplica, roleCoordinator},
	opBatch:  {roleReplica},
}

// results are the values of the result label.
var results = []string{resultOK, resultNotFound, resultBadRequest, resultTooLarge,
	resultNotOwner, resultUnavailable, resultError}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvsync_requests_total",
			Help: "KV requests received by this node, by operation (set, get, delete, batch), role (replica, coordinator, none) and result.",
		}, []string{"op", "role", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kvsync_request_duration_seconds",
			Help:    "Time to answer a KV request, by operation and role.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"op", "role"}),
		batchOps: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kvsync_batch_ops",
			Help:    "Replica reads and writes carried by one batch request.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		staleWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvsync_stale_writes_total",
			Help: "Versioned writes not stored because the key already held a newer version (acknowledged all the same).",
		}),
		migrate: migrate.NewMetrics("kvsync"),
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
	for _, c := range append([]prometheus.Collector{m.requests, m.latency, m.batchOps, m.staleWrites}, m.migrate.Collectors()...) {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, errors.New("kvsync metrics are already registered on this node's registry: one server per ClusterKit")
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
