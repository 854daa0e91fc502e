// Package lagmetrics exports a kv-sync client's replication lag
// (client.Client.Lag) as Prometheus metrics. It is a package of its own so
// that a program using the client without Prometheus does not link it.
package lagmetrics

import (
	"clusterkit.dev/services/kv-sync/client"
	"github.com/prometheus/client_golang/prometheus"
)

// NewCollector returns a Prometheus collector of the lag that lag reports, as the gauges kvsync_replication_lag_operations{node} and
// kvsync_replication_lag_seconds{node} and the counter
// kvsync_replication_missed_writes_total{node}. Register
// NewCollector(c.Lag) to export a client.Client's: every node of its map has
// its series from the start, at 0, so a rate sees the first missed write.
func NewCollector(lag func() []client.NodeLag) prometheus.Collector {
	return lagCollector{
		lag: lag,
		ops: prometheus.NewDesc("kvsync_replication_lag_operations",
			"Acknowledged writes whose copy to an owner is still running, by owner.", []string{"node"}, nil),
		secs: prometheus.NewDesc("kvsync_replication_lag_seconds",
			"Age of the oldest acknowledged write whose copy to an owner is still running, by owner.", []string{"node"}, nil),
		missed: prometheus.NewDesc("kvsync_replication_missed_writes_total",
			"Acknowledged writes an owner failed to store, by owner: reads write them back, a restarted owner catches up.", []string{"node"}, nil),
	}
}

type lagCollector struct {
	lag               func() []client.NodeLag
	ops, secs, missed *prometheus.Desc
}

func (c lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.ops
	ch <- c.secs
	ch <- c.missed
}

func (c lagCollector) Collect(ch chan<- prometheus.Metric) {
	for _, l := range c.lag() {
		ch <- prometheus.MustNewConstMetric(c.ops, prometheus.GaugeValue, float64(l.Operations), l.Node)
		ch <- prometheus.MustNewConstMetric(c.secs, prometheus.GaugeValue, l.Seconds, l.Node)
		ch <- prometheus.MustNewConstMetric(c.missed, prometheus.CounterValue, float64(l.Missed), l.Node)
	}
}
