package clusterkit

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// A delivery older than one already made for the same partition is
// counted; other partitions and equal versions are not.
func TestOutOfOrderDeliveriesAreCounted(t *testing.T) {
	ck, err := NewClusterKit(Options{NodeID: "n1", HTTPAddr: "127.0.0.1:1", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []PartitionEvent{
		{Partition: 1, Version: 5}, {Partition: 1, Version: 7}, {Partition: 2, Version: 3},
		{Partition: 1, Version: 7}, {Partition: 2, Version: 4},
	} {
		ck.events.checkOrder(ev)
	}
	if got := counterValue(t, ck.metrics.hookOutOfOrder); got != 0 {
		t.Fatalf("%v counted for deliveries in order", got)
	}
	ck.events.checkOrder(PartitionEvent{Partition: 1, Version: 6})
	if got := counterValue(t, ck.metrics.hookOutOfOrder); got != 1 {
		t.Fatalf("%v counted after a delivery went back, want 1", got)
	}
}
