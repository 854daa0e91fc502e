package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"clusterkit.dev/services/kit/api"
	"clusterkit.dev/services/kit/migrate"
)

// metrics are the service's Prometheus collectors, registered on the node's
// registry (ClusterKit.Registry) so that one scrape of /metrics covers the
// library and the service. Every name starts with "kvsync_".
type metrics struct {
	*api.RequestMetrics
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
	// result: api.Result of the answer's status
)

// requestRoles are the roles each operation is counted with: a batch is
// always part of a client's quorum (role replica), a refused one included.
var requestRoles = map[string][]string{
	opSet:    {roleNone, roleReplica, roleCoordinator},
	opGet:    {roleNone, roleReplica, roleCoordinator},
	opDelete: {roleNone, roleReplica, roleCoordinator},
	opBatch:  {roleReplica},
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		RequestMetrics: api.NewRequestMetrics("kvsync", requestRoles,
			"KV requests received by this node, by operation (set, get, delete, batch), role (replica, coordinator, none) and result.",
			"Time to answer a KV request, by operation and role."),
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
	own := []prometheus.Collector{m.batchOps, m.staleWrites}
	if err := api.Register(reg, "kvsync", append(append(m.Collectors(), own...), m.migrate.Collectors()...)...); err != nil {
		return nil, err
	}
	return m, nil
}
