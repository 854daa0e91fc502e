package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kit/api"
)

// metrics are the server's Prometheus metrics, all named kvasync_*.
type metrics struct {
	*api.RequestMetrics
	batchOps    *prometheus.CounterVec
	syncTime    prometheus.Histogram
	batches     *prometheus.CounterVec
	shipped     *prometheus.CounterVec
	applied     *prometheus.CounterVec
	rejected    *prometheus.CounterVec
	migrations  *prometheus.CounterVec
	migRecords  prometheus.Counter
	migBytes    prometheus.Counter
	dropped     prometheus.Counter
	lagOps      *prometheus.Desc
	lagSeconds  *prometheus.Desc
	lagProvider func() []PeerLag
}

// Operations of kvasync_requests_total and
// kvasync_request_duration_seconds (api.RequestMetrics), one per endpoint
// (kvasync_batch_ops_total counts sets and deletes). The result label of
// both counters is api.Result of the answer's status.
const (
	opSet               = "set"
	opGet               = "get"
	opDelete            = "delete"
	opBatch             = "batch"
	opReplicationStatus = "replication_status"
	opReplicate         = "replicate"
	opStream            = "stream"
)

// requestRoles are the roles each operation of kvasync_requests_total is
// counted with: the node's role for the key's partition where the handler
// looks it up, none for a request refused before.
var requestRoles = map[string][]string{
	opSet:               anyRole,
	opGet:               anyRole,
	opDelete:            anyRole,
	opBatch:             {string(clusterkit.RoleNone), string(clusterkit.RolePrimary)},
	opReplicationStatus: {string(clusterkit.RoleNone)},
	opReplicate:         {string(clusterkit.RoleNone), string(clusterkit.RoleReplica)},
	opStream:            anyRole,
}

// anyRole are the roles a node can have for a partition.
var anyRole = []string{string(clusterkit.RoleNone), string(clusterkit.RolePrimary), string(clusterkit.RoleReplica), string(clusterkit.RoleJoining)}

// Kinds of kvasync_migrated_partitions_total, and the results of it and of
// kvasync_replication_batches_total.
const (
	kindCopy      = "copy"
	kindCatchUp   = "catchup"
	outcomeOK     = "ok"
	outcomeFailed = "error"
)

// Results of kvasync_replication_records_received_total.
const (
	recordsApplied = "applied"
	recordsSkipped = "skipped"
)

func newMetrics(s *Server, reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		RequestMetrics: api.NewRequestMetrics("kvasync", requestRoles,
			"Requests served, by operation, this node's role for the key's partition, and result.",
			"Time to serve a request, by operation and this node's role for the key's partition."),
		batchOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvasync_batch_ops_total",
			Help: "Writes carried by POST /kv/batch requests (each request also counts once in kvasync_requests_total as op batch), by operation and result.",
		}, []string{"op", "result"}),
		syncTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kvasync_wal_sync_duration_seconds",
			Help:    "Time of one fsync of the store's write-ahead log (Pebble's) by the SYNC_WINDOW loop.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12),
		}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvasync_replication_batches_total",
			Help: "Replication requests sent by this node as primary, by peer and result (ok, error).",
		}, []string{"peer", "result"}),
		shipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvasync_replication_records_sent_total",
			Help: "Records shipped to a peer by this node as primary and acknowledged.",
		}, []string{"peer"}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvasync_replication_records_received_total",
			Help: "Records received from primaries, by result: applied, or skipped because this node held the same or a newer version.",
		}, []string{"result"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvasync_replication_sections_refused_total",
			Help: "Partition sections of replication requests this node refused, by reason (stale_epoch, not_owner, gap, not_ready, bad_record).",
		}, []string{"reason"}),
		migrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvasync_migrated_partitions_total",
			Help: "Partition copies by this node: kind copy (gained a partition) or catchup (promoted to primary), and result.",
		}, []string{"kind", "result"}),
		migRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvasync_migrated_records_total",
			Help: "Records received by partition copies.",
		}),
		migBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvasync_migrated_bytes_total",
			Help: "Key and value bytes received by partition copies.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvasync_dropped_partitions_total",
			Help: "Partitions deleted from this node's store after it lost them.",
		}),
		lagOps: prometheus.NewDesc("kvasync_replication_lag_operations",
			"Records this node, as primary, has not yet had acknowledged by a peer (counted up to 100000 per partition).", []string{"peer"}, nil),
		lagSeconds: prometheus.NewDesc("kvasync_replication_lag_seconds",
			"Age of the oldest record this node, as primary, has not yet had acknowledged by a peer.", []string{"peer"}, nil),
		lagProvider: func() []PeerLag { return s.repl.lag() },
	}
	// Every label combination known in advance exists from the start, at
	// 0, so that a rate sees the first event and a query of a failure has
	// a series to show. Those of a peer are created with its shipper.
	for _, op := range []string{opSet, opDelete} {
		for _, r := range api.Results {
			m.batchOps.WithLabelValues(op, r)
		}
	}
	for _, r := range []string{recordsApplied, recordsSkipped} {
		m.applied.WithLabelValues(r)
	}
	for _, reason := range []string{statusStale, statusNotOwner, statusGap, statusNotReady, statusBadRecord} {
		m.rejected.WithLabelValues(reason)
	}
	for _, kind := range []string{kindCopy, kindCatchUp} {
		for _, r := range []string{outcomeOK, outcomeFailed} {
			m.migrations.WithLabelValues(kind, r)
		}
	}
	for _, c := range m.collectors() {
		if err := reg.Register(c); err != nil {
			m.unregister(reg)
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) collectors() []prometheus.Collector {
	return append(m.Collectors(), m.batchOps, m.syncTime, m.batches, m.shipped,
		m.applied, m.rejected, m.migrations, m.migRecords, m.migBytes, m.dropped, lagCollector{m})
}

// unregister removes the metrics from reg.
func (m *metrics) unregister(reg prometheus.Registerer) {
	for _, c := range m.collectors() {
		reg.Unregister(c)
	}
}

// addPeer creates the series of a peer this node ships to, at 0.
func (m *metrics) addPeer(peer string) {
	for _, r := range []string{outcomeOK, outcomeFailed} {
		m.batches.WithLabelValues(peer, r)
	}
	m.shipped.WithLabelValues(peer)
}

func (m *metrics) observeBatchOp(op string, err error) {
	m.batchOps.WithLabelValues(op, api.Result(statusOf(err))).Inc()
}

func (m *metrics) observeSync(d time.Duration) {
	m.syncTime.Observe(d.Seconds())
}

// lagCollector computes the replication lag when scraped.
type lagCollector struct{ m *metrics }

func (c lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.m.lagOps
	ch <- c.m.lagSeconds
}

func (c lagCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.m.lagProvider() {
		ch <- prometheus.MustNewConstMetric(c.m.lagOps, prometheus.GaugeValue, float64(p.Operations), p.Peer)
		ch <- prometheus.MustNewConstMetric(c.m.lagSeconds, prometheus.GaugeValue, p.Seconds, p.Peer)
	}
}
