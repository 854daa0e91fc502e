package server

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the service's Prometheus collectors, registered on the node's
// registry (ClusterKit.Registry) so that one scrape of /metrics covers the
// library and the service. Every name starts with "kvsync_".
type metrics struct {
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	batchOps    prometheus.Histogram
	staleWrites prometheus.Counter

	migrations      *prometheus.CounterVec
	migrationTime   prometheus.Histogram
	migratedRecords prometheus.Counter
	migratedBytes   prometheus.Counter
	streamedBytes   prometheus.Counter
	dropped         prometheus.Counter
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
	resultOK          = "ok"
	resultNotFound    = "not_found"
	resultBadRequest  = "bad_request"
	resultTooLarge    = "too_large"
	resultNotOwner    = "not_owner"
	resultUnavailable = "unavailable"
	resultError       = "error"
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
		migrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvsync_migrations_total",
			Help: "Partition copies into this node, by kind (copy: a gained partition; catchup: after a restart) and result (ok, error).",
		}, []string{"kind", "result"}),
		migrationTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kvsync_migration_duration_seconds",
			Help:    "Time to copy one partition from one source.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
		migratedRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvsync_migrated_records_total",
			Help: "Records received by partition copies.",
		}),
		migratedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvsync_migrated_bytes_total",
			Help: "Key and value bytes received by partition copies.",
		}),
		streamedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvsync_streamed_bytes_total",
			Help: "Key and value bytes this node sent to other nodes copying its partitions.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvsync_partitions_dropped_total",
			Help: "Partitions whose data this node deleted after losing them.",
		}),
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
	for _, kind := range []string{kindCopy, kindCatchUp} {
		for _, r := range []string{resultOK, resultError} {
			m.migrations.WithLabelValues(kind, r)
		}
	}
	for _, c := range []prometheus.Collector{
		m.requests, m.latency, m.batchOps, m.staleWrites,
		m.migrations, m.migrationTime, m.migratedRecords, m.migratedBytes, m.streamedBytes, m.dropped,
	} {
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
