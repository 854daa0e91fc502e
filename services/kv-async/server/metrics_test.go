package server

import (
	"strings"
	"testing"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
	"clusterkit.dev/services/kit/api"
	"clusterkit.dev/services/kit/kittest"
)

// TestMetricsStartAtZero checks that a new server exports every label
// combination of its metrics known in advance at 0, before any request: a
// rate sees the first event, and a query of failures has series on a
// healthy node. A peer's series start at 0 with its shipper.
func TestMetricsStartAtZero(t *testing.T) {
	ck, err := clusterkit.NewClusterKit(clusterkit.Options{NodeID: "node-1", HTTPAddr: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(ck, Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := cktest.Samples(t, ck.Registry())

	// The request series as every service has them; kv-async counts its
	// partition moves under its own names, below.
	var want []string
	for _, name := range kittest.CommonSeries("kvasync", requestRoles) {
		if strings.HasPrefix(name, "kvasync_request") {
			want = append(want, name)
		}
	}
	for _, op := range []string{"set", "delete"} {
		for _, r := range api.Results {
			want = append(want, `kvasync_batch_ops_total{op="`+op+`",result="`+r+`"}`)
		}
	}
	for _, kind := range []string{"copy", "catchup"} {
		for _, r := range []string{"ok", "error"} {
			want = append(want, `kvasync_migrated_partitions_total{kind="`+kind+`",result="`+r+`"}`)
		}
	}
	for _, reason := range []string{"stale_epoch", "not_owner", "gap", "not_ready", "bad_record"} {
		want = append(want, `kvasync_replication_sections_refused_total{reason="`+reason+`"}`)
	}
	want = append(want,
		`kvasync_requests_total{op="set",result="error",role="primary"}`,
		`kvasync_requests_total{op="get",result="not_owner",role="replica"}`,
		`kvasync_requests_total{op="batch",result="unavailable",role="primary"}`,
		`kvasync_requests_total{op="replicate",result="bad_request",role="none"}`,
		`kvasync_batch_ops_total{op="set",result="too_large"}`,
		`kvasync_replication_records_received_total{result="applied"}`,
		`kvasync_replication_records_received_total{result="skipped"}`,
		"kvasync_wal_sync_duration_seconds_count", "kvasync_migrated_records_total", "kvasync_migrated_bytes_total",
		"kvasync_dropped_partitions_total",
		`clusterkit_handoffs_total{result="timeout"}`, `clusterkit_hook_invocations_total{result="error"}`)
	kittest.CheckZero(t, ck.Registry(), want)
	// No peer is known before the node has a map.
	for name := range got {
		if strings.Contains(name, `peer="`) {
			t.Errorf("%s exported before the node has a map", name)
		}
	}

	s.metrics.addPeer("node-2")
	kittest.CheckZero(t, ck.Registry(), []string{
		`kvasync_replication_batches_total{peer="node-2",result="ok"}`,
		`kvasync_replication_batches_total{peer="node-2",result="error"}`,
		`kvasync_replication_records_sent_total{peer="node-2"}`,
	})
}
