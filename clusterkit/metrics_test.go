package clusterkit_test

import (
	"testing"

	"clusterkit.dev/clusterkit"
)

// TestMetricsStartAtZero checks that a new node exports its counters and
// histograms at 0, every known label value included, before it starts: a
// rate sees the first event, and a query of failures (handoffs that timed
// out, hooks that panicked) has series on a healthy cluster.
func TestMetricsStartAtZero(t *testing.T) {
	ck, err := clusterkit.NewClusterKit(clusterkit.Options{NodeID: "node-1", HTTPAddr: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	families, err := ck.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetName() + `="` + l.GetValue() + `"}`
			}
			switch {
			case m.GetCounter() != nil:
				got[name] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				got[name+"_count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	for _, name := range []string{
		`clusterkit_handoffs_total{result="completed"}`,
		`clusterkit_handoffs_total{result="timeout"}`,
		`clusterkit_handoffs_total{result="replanned"}`,
		`clusterkit_hook_invocations_total{result="ok"}`,
		`clusterkit_hook_invocations_total{result="error"}`,
		`clusterkit_hook_invocations_total{result="panic"}`,
		"clusterkit_joins_total", "clusterkit_leaves_total", "clusterkit_node_deaths_total",
		"clusterkit_failovers_total", "clusterkit_failover_duration_seconds_count",
		"clusterkit_handoff_duration_seconds_count", "clusterkit_hook_duration_seconds_count",
		"clusterkit_raft_apply_duration_seconds_count",
	} {
		if v, ok := got[name]; !ok || v != 0 {
			t.Errorf("%s: %v (exported %v), want 0", name, v, ok)
		}
	}
}
