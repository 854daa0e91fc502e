package server

import (
	"strings"
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
			want = append(want, `kvsync_request_duration_seconds_count{op="`+op+`",role="`+role+`"}`)
			for _, r := range api.Results {
				want = append(want, `kvsync_requests_total{op="`+op+`",result="`+r+`",role="`+role+`"}`)
			}
		}
	}
	for _, kind := range []string{"copy", "catchup"} {
		for _, r := range []string{"ok", "error"} {
			want = append(want, `kvsync_migrations_total{kind="`+kind+`",result="`+r+`"}`)
		}
	}
	want = append(want,
		`kvsync_requests_total{op="set",result="error",role="coordinator"}`,
		`kvsync_requests_total{op="get",result="not_owner",role="replica"}`,
		`kvsync_requests_total{op="batch",result="bad_request",role="replica"}`,
		`kvsync_requests_total{op="delete",result="unavailable",role="coordinator"}`,
		"kvsync_batch_ops_count", "kvsync_stale_writes_total",
		"kvsync_migration_duration_seconds_count", "kvsync_migrated_records_total",
		"kvsync_migrated_bytes_total", "kvsync_streamed_bytes_total", "kvsync_partitions_dropped_total",
		`clusterkit_handoffs_total{result="timeout"}`, `clusterkit_hook_invocations_total{result="error"}`)
	for _, name := range want {
		if v, ok := got[name]; !ok || v != 0 {
			t.Errorf("%s: %v (exported %v), want 0", name, v, ok)
		}
	}
	// No owner is known before the node has a map.
	for name := range got {
		if strings.HasPrefix(name, "kvsync_replication_") {
			t.Errorf("%s exported before the node has a map", name)
		}
	}
}
