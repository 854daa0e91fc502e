package server

import (
	"testing"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
	"clusterkit.dev/services/kit/api"
)

// TestMetricsStartAtZero checks that a new server exports every label
// combination of its metrics at 0, before any request: a rate sees the
// first event, and a query of failures has series on a healthy node.
func TestMetricsStartAtZero(t *testing.T) {
	ck, err := clusterkit.NewClusterKit(clusterkit.Options{NodeID: "node-1", HTTPAddr: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(ck, Config{DataDir: t.TempDir(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := cktest.Samples(t, ck.Registry())

	var want []string
	for op, roles := range requestRoles {
		for _, role := range roles {
			want = append(want, `kvss_request_duration_seconds_count{op="`+op+`",role="`+role+`"}`)
			for _, r := range api.Results {
				want = append(want, `kvss_requests_total{op="`+op+`",result="`+r+`",role="`+role+`"}`)
			}
		}
	}
	for _, kind := range []string{"copy", "catchup"} {
		for _, r := range []string{"ok", "error"} {
			want = append(want, `kvss_migrations_total{kind="`+kind+`",result="`+r+`"}`)
		}
	}
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
		"kvss_migration_duration_seconds_count", "kvss_migrated_records_total",
		"kvss_migrated_bytes_total", "kvss_streamed_bytes_total", "kvss_partitions_dropped_total",
		`clusterkit_handoffs_total{result="timeout"}`, `clusterkit_hook_invocations_total{result="error"}`)
	for _, name := range want {
		if v, ok := got[name]; !ok || v != 0 {
			t.Errorf("%s: %v (exported %v), want 0", name, v, ok)
		}
	}
}
