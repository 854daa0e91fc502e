package lagmetrics

import (
	"strconv"
	"testing"

	"clusterkit.dev/services/kv-sync/client"
	"github.com/prometheus/client_golang/prometheus"
)

func TestCollector(t *testing.T) {
	lag := []client.NodeLag{{Node: "node-2", Operations: 3, Seconds: 0.5, Missed: 7}}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(func() []client.NodeLag { return lag }))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != 1 || m.GetLabel()[0].GetName() != "node" || m.GetLabel()[0].GetValue() != "node-2" {
				t.Errorf("%s: labels %v, want node=node-2", f.GetName(), m.GetLabel())
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			got[f.GetName()] = f.GetType().String() + " " + strconv.FormatFloat(v, 'g', -1, 64)
		}
	}
	want := map[string]string{
		"kvsync_replication_lag_operations":      "GAUGE 3",
		"kvsync_replication_lag_seconds":         "GAUGE 0.5",
		"kvsync_replication_missed_writes_total": "COUNTER 7",
	}
	if len(got) != len(want) {
		t.Fatalf("metrics %v, want %v", got, want)
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: %q, want %q", name, got[name], w)
		}
	}
}
