package clusterkit

import (
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics holds one node's Prometheus collectors, registered on a registry
// of its own (no global state): several nodes in one process each export
// their own.
type metrics struct {
	registry *prometheus.Registry

	joins           prometheus.Counter
	leaves          prometheus.Counter
	deaths          prometheus.Counter
	failovers       prometheus.Counter
	failoverSeconds prometheus.Histogram
	handoffs        *prometheus.CounterVec
	handoffSeconds  prometheus.Histogram
	hookCalls       *prometheus.CounterVec
	hookDuration    prometheus.Histogram
	applyDuration   prometheus.Histogram
	unauthorized    *prometheus.CounterVec
	hookOutOfOrder  prometheus.Counter
}

func newMetrics(ck *ClusterKit) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		joins: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clusterkit_joins_total",
			Help: "Nodes added to the cluster by this node while it was leader.",
		}),
		leaves: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clusterkit_leaves_total",
			Help: "Nodes removed from the cluster by this node while it was leader.",
		}),
		deaths: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clusterkit_node_deaths_total",
			Help: "Members declared dead by this node while it was leader.",
		}),
		failovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clusterkit_failovers_total",
			Help: "Partitions whose dead primary this node replaced while it was leader.",
		}),
		failoverSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "clusterkit_failover_duration_seconds",
			Help:    "From the dead primary's last contact to the commit of its replacement.",
			Buckets: prometheus.ExponentialBuckets(0.1, 1.6, 14),
		}),
		handoffs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clusterkit_handoffs_total",
			Help: "Make-before-break handoffs ended by this node while leader, by result (completed, timeout, replanned).",
		}, []string{"result"}),
		handoffSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "clusterkit_handoff_duration_seconds",
			Help:    "From the start of a handoff to the new owner's ready report.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 14),
		}),
		hookCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clusterkit_hook_invocations_total",
			Help: "Partition hook and event handler invocations on this node, by result (ok, error, panic).",
		}, []string{"result"}),
		hookDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "clusterkit_hook_duration_seconds",
			Help:    "Time spent in partition hooks on this node.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}),
		applyDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "clusterkit_raft_apply_duration_seconds",
			Help:    "Time to commit a command proposed by this node.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		hookOutOfOrder: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clusterkit_hook_deliveries_out_of_order_total",
			Help: "Partition events delivered to the handlers after an event of the same partition with a newer map version: always 0 unless the library is broken.",
		}),
		unauthorized: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clusterkit_unauthorized_requests_total",
			Help: "Requests refused for a missing or wrong cluster token, by route (raft for raft connection handshakes).",
		}, []string{"route"}),
	}
	for _, r := range []string{"ok", "error", "panic"} {
		m.hookCalls.WithLabelValues(r)
	}
	for _, r := range []string{"completed", "timeout", "replanned"} {
		m.handoffs.WithLabelValues(r)
	}
	m.registry.MustRegister(m.unauthorized, m.hookOutOfOrder, m.joins, m.leaves, m.hookCalls, m.hookDuration, m.applyDuration,
		m.deaths, m.failovers, m.failoverSeconds, m.handoffs, m.handoffSeconds,
		&stateCollector{ck: ck},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observeHook(result string, d time.Duration) {
	m.hookCalls.WithLabelValues(result).Inc()
	m.hookDuration.Observe(d.Seconds())
}

// stateCollector reads the published view and raft at scrape time, so the
// gauges are never stale and cost nothing between scrapes.
type stateCollector struct{ ck *ClusterKit }

var (
	descRaftState   = prometheus.NewDesc("clusterkit_raft_state", "1 for this node's current raft state.", []string{"state"}, nil)
	descRaftTerm    = prometheus.NewDesc("clusterkit_raft_term", "Current raft term.", nil, nil)
	descCommitIndex = prometheus.NewDesc("clusterkit_raft_commit_index", "Highest raft log index known committed.", nil, nil)
	descApplied     = prometheus.NewDesc("clusterkit_raft_applied_index", "Highest raft log index applied to the cluster state.", nil, nil)
	descLastContact = prometheus.NewDesc("clusterkit_raft_last_contact_seconds", "Seconds since this follower last heard from the leader (0 on the leader).", nil, nil)
	descIsLeader    = prometheus.NewDesc("clusterkit_is_leader", "1 if this node is the raft leader.", nil, nil)
	descVoters      = prometheus.NewDesc("clusterkit_raft_servers", "Raft servers by suffrage.", []string{"suffrage"}, nil)
	descNodes       = prometheus.NewDesc("clusterkit_nodes", "Cluster members by state.", []string{"state"}, nil)
	descOwned       = prometheus.NewDesc("clusterkit_partitions_owned", "Partitions this node owns, by role.", []string{"role"}, nil)
	descVersion     = prometheus.NewDesc("clusterkit_map_version", "Version of the cluster map this node has applied.", nil, nil)
	descPartitions  = prometheus.NewDesc("clusterkit_partitions", "Partition count of the cluster.", nil, nil)
	descUnder       = prometheus.NewDesc("clusterkit_partitions_under_replicated", "Partitions with fewer live ready owners than min(ReplicationFactor, live nodes).", nil, nil)
	descNoPrimary   = prometheus.NewDesc("clusterkit_partitions_without_live_primary", "Partitions whose primary is missing, suspect or dead.", nil, nil)
	descMoves       = prometheus.NewDesc("clusterkit_moves_in_flight", "Make-before-break handoffs in progress.", nil, nil)
	descDraining    = prometheus.NewDesc("clusterkit_nodes_draining", "Members being drained.", nil, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRaftState, descRaftTerm, descCommitIndex, descApplied,
		descLastContact, descIsLeader, descVoters, descNodes, descOwned, descVersion, descPartitions,
		descUnder, descNoPrimary, descMoves, descDraining} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	v := c.ck.view.Load()
	if v != nil {
		gauge(descVersion, float64(v.version))
		gauge(descPartitions, float64(v.partitionCount))
		counts := map[NodeState]int{NodeAlive: 0, NodeSuspect: 0, NodeDead: 0}
		for _, n := range v.nodeList {
			counts[n.State]++
		}
		for st, n := range counts {
			gauge(descNodes, float64(n), string(st))
		}
		h := v.health()
		gauge(descUnder, float64(h.underReplicated))
		gauge(descNoPrimary, float64(h.noLivePrimary))
		gauge(descMoves, float64(h.moves))
		gauge(descDraining, float64(h.draining))
		primary, replica := v.owned(c.ck.opts.NodeID)
		gauge(descOwned, float64(primary), "primary")
		gauge(descOwned, float64(replica), "replica")
	}
	rn := c.ck.raftNode()
	if rn == nil {
		return
	}
	st := rn.State()
	for _, s := range []raft.RaftState{raft.Follower, raft.Candidate, raft.Leader, raft.Shutdown} {
		val := 0.0
		if s == st {
			val = 1
		}
		gauge(descRaftState, val, lowerState(s))
	}
	isLeader := 0.0
	if st == raft.Leader {
		isLeader = 1
	}
	gauge(descIsLeader, isLeader)
	stats := rn.Stats()
	gauge(descRaftTerm, parseFloat(stats["term"]))
	gauge(descCommitIndex, float64(rn.CommitIndex()))
	gauge(descApplied, float64(rn.AppliedIndex()))
	lc := 0.0
	if st != raft.Leader {
		if t := rn.LastContact(); !t.IsZero() {
			lc = time.Since(t).Seconds()
		}
	}
	gauge(descLastContact, lc)
	if servers, err := rn.configuration(); err == nil {
		voters, nonvoters := 0, 0
		for _, s := range servers {
			if s.Suffrage == raft.Voter {
				voters++
			} else {
				nonvoters++
			}
		}
		gauge(descVoters, float64(voters), "voter")
		gauge(descVoters, float64(nonvoters), "nonvoter")
	}
}

func parseFloat(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

func lowerState(s raft.RaftState) string {
	switch s {
	case raft.Follower:
		return "follower"
	case raft.Candidate:
		return "candidate"
	case raft.Leader:
		return "leader"
	default:
		return "shutdown"
	}
}
