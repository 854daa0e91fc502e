package server

import (
	"testing"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kit/kittest"
)

// TestMetricsStartAtZero checks that a new server exports every label
// combination of its metrics at 0, before any request: a rate sees the
// first event, and a query of failures has series on a healthy node.
func TestMetricsStartAtZero(t *testing.T) {
	var want []string
	for _, r := range []string{"ok", "stale_epoch", "not_owner", "failed", "dropped"} {
		want = append(want, `kvss_replication_records_total{result="`+r+`"}`)
	}
	want = append(want,
		`kvss_requests_total{op="set",result="error",role="primary"}`,
		`kvss_requests_total{op="get",result="unavailable",role="fallback"}`,
		`kvss_requests_total{op="delete",result="not_owner",role="forward"}`,
		`kvss_requests_total{op="get",result="bad_request",role="none"}`,
		`kvss_replication_batches_total{result="ok"}`, `kvss_replication_batches_total{result="error"}`,
		`kvss_forward_batch_ops_count{kind="read"}`, `kvss_forward_batch_ops_count{kind="write"}`,
		"kvss_replication_batch_records_count", "kvss_replication_lag_seconds_count", "kvss_replication_pending",
		`clusterkit_handoffs_total{result="timeout"}`, `clusterkit_hook_invocations_total{result="error"}`)
	kittest.CheckStartsAtZero(t, "kvss", requestRoles, func(ck *clusterkit.ClusterKit) (*Server, error) {
		return New(ck, Config{DataDir: t.TempDir(), NoSync: true})
	}, want...)
}
