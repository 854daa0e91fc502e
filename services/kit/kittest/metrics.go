package kittest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
	"clusterkit.dev/services/kit/api"
	"clusterkit.dev/services/kit/migrate"
)

// CommonSeries returns the series every service exports from the start,
// named with prefix: each request series of roles (api.RequestMetrics)
// and the partition moves' (migrate.Metrics).
func CommonSeries(prefix string, roles map[string][]string) []string {
	var want []string
	for op, rs := range roles {
		for _, role := range rs {
			want = append(want, prefix+`_request_duration_seconds_count{op="`+op+`",role="`+role+`"}`)
			for _, r := range api.Results {
				want = append(want, prefix+`_requests_total{op="`+op+`",result="`+r+`",role="`+role+`"}`)
			}
		}
	}
	for _, kind := range []string{migrate.KindCopy, migrate.KindCatchUp} {
		for _, r := range []string{migrate.ResultOK, migrate.ResultError} {
			want = append(want, prefix+`_migrations_total{kind="`+kind+`",result="`+r+`"}`)
		}
	}
	return append(want, prefix+"_migration_duration_seconds_count", prefix+"_migrated_records_total",
		prefix+"_migrated_bytes_total", prefix+"_streamed_bytes_total", prefix+"_partitions_dropped_total")
}

// CheckZero checks that g exports every series of want, at 0.
func CheckZero(t testing.TB, g prometheus.Gatherer, want []string) {
	t.Helper()
	got := cktest.Samples(t, g)
	for _, name := range want {
		if v, ok := got[name]; !ok || v != 0 {
			t.Errorf("%s: %v (exported %v), want 0", name, v, ok)
		}
	}
}

// CheckStartsAtZero makes a server with newServer on a ClusterKit that
// never starts, and checks that, before any request, the node's registry
// exports at 0 every series services share (CommonSeries of prefix and
// roles) and every series of more: a rate sees the first event, and a
// query of failures has series on a healthy node. It returns the
// ClusterKit, for further checks of its registry; the server is closed
// when the test ends.
func CheckStartsAtZero[S Server](t testing.TB, prefix string, roles map[string][]string,
	newServer func(ck *clusterkit.ClusterKit) (S, error), more ...string) *clusterkit.ClusterKit {
	t.Helper()
	ck, err := clusterkit.NewClusterKit(clusterkit.Options{NodeID: "node-1", HTTPAddr: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := newServer(ck)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	CheckZero(t, ck.Registry(), append(CommonSeries(prefix, roles), more...))
	return ck
}
