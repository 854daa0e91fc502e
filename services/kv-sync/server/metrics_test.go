package server

import (
	"strings"
	"testing"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
	"clusterkit.dev/services/kit/kittest"
)

// TestMetricsStartAtZero checks that a new server exports every label
// combination of its metrics at 0, before any request: a rate sees the
// first event, and a query of failures has series on a healthy node.
func TestMetricsStartAtZero(t *testing.T) {
	ck := kittest.CheckStartsAtZero(t, "kvsync", requestRoles, func(ck *clusterkit.ClusterKit) (*Server, error) {
		return New(ck, Config{DataDir: t.TempDir(), NoSync: true})
	},
		`kvsync_requests_total{op="set",result="error",role="coordinator"}`,
		`kvsync_requests_total{op="get",result="not_owner",role="replica"}`,
		`kvsync_requests_total{op="batch",result="bad_request",role="replica"}`,
		`kvsync_requests_total{op="delete",result="unavailable",role="coordinator"}`,
		"kvsync_batch_ops_count", "kvsync_stale_writes_total",
		`clusterkit_handoffs_total{result="timeout"}`, `clusterkit_hook_invocations_total{result="error"}`)
	// No owner is known before the node has a map.
	for name := range cktest.Samples(t, ck.Registry()) {
		if strings.HasPrefix(name, "kvsync_replication_") {
			t.Errorf("%s exported before the node has a map", name)
		}
	}
}
