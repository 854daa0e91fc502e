package migrate

import "github.com/prometheus/client_golang/prometheus"

// Kinds of copy, the kind label of <prefix>_migrations_total.
const (
	KindCopy    = "copy"    // a gained partition, from the event's CopyFrom
	KindCatchUp = "catchup" // from the other owners, after a restart or a promotion
)

// Results of a copy, the result label of <prefix>_migrations_total.
const (
	ResultOK    = "ok"
	ResultError = "error"
)

// Metrics are the Prometheus collectors of partition moves. Register them
// (Collectors) on the node's registry.
type Metrics struct {
	migrations      *prometheus.CounterVec
	migrationTime   prometheus.Histogram
	migratedRecords prometheus.Counter
	migratedBytes   prometheus.Counter
	streamed        prometheus.Counter
	dropped         prometheus.Counter
}

// NewMetrics returns the metrics, each named prefix + "_" + its name
// (kvsync_migrations_total), every label combination at 0.
func NewMetrics(prefix string) *Metrics {
	m := &Metrics{
		migrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: prefix + "_migrations_total",
			Help: "Partition copies into this node, by kind (copy: a gained partition; catchup: from the other owners, after a restart or a promotion) and result (ok, error).",
		}, []string{"kind", "result"}),
		migrationTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    prefix + "_migration_duration_seconds",
			Help:    "Time to copy one partition from one source.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
		migratedRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: prefix + "_migrated_records_total",
			Help: "Records received by partition copies.",
		}),
		migratedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: prefix + "_migrated_bytes_total",
			Help: "Key and value bytes received by partition copies.",
		}),
		streamed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: prefix + "_streamed_bytes_total",
			Help: "Key and value bytes this node sent to other nodes copying its partitions.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: prefix + "_partitions_dropped_total",
			Help: "Partitions whose data this node deleted after losing them.",
		}),
	}
	for _, kind := range []string{KindCopy, KindCatchUp} {
		for _, r := range []string{ResultOK, ResultError} {
			m.migrations.WithLabelValues(kind, r)
		}
	}
	return m
}

// Collectors returns the collectors, to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.migrations, m.migrationTime, m.migratedRecords, m.migratedBytes, m.streamed, m.dropped}
}
