package clusterkit

import (
	"fmt"
	"testing"
	"time"

	"clusterkit.dev/clusterkit/internal/state"
	"clusterkit.dev/clusterkit/placement"
)

// largeState returns a settled state of n nodes and p partitions, RF 3,
// with placement's first table.
func largeState(b *testing.B, n, p int) *state.State {
	b.Helper()
	st := state.New()
	apply := func(c state.Command) {
		if _, err := st.Apply(c); err != nil {
			b.Fatal(err)
		}
	}
	apply(state.Command{Op: state.OpInit, ClusterName: "bench", PartitionCount: p, ReplicationFactor: 3})
	var nodes []placement.Node
	for i := range n {
		id := fmt.Sprintf("node-%04d", i)
		apply(state.Command{Op: state.OpJoin, Node: &state.Node{ID: id, HTTPAddr: id + ":1", RaftAddr: id + ":2", Weight: 1}})
		nodes = append(nodes, placement.Node{ID: id})
	}
	t, err := placement.Compute(nil, nodes, placement.Config{Partitions: p, ReplicationFactor: 3})
	if err != nil {
		b.Fatal(err)
	}
	owners := make([][]string, p)
	for i := range t {
		owners[i] = t[i].Owners
	}
	apply(state.Command{Op: state.OpSetTable, BaseVersion: st.Version, Owners: owners, Reason: "initial", At: 1})
	return st
}

// BenchmarkPlan measures GET /cluster/plan's dry run on the leader, without
// HTTP and the fan-out for sizes, at 1,000 nodes and 65,536 partitions
// (RF 3, MaxConcurrentMoves 8): one join and one drain.
func BenchmarkPlan(b *testing.B) {
	ck, err := NewClusterKit(Options{NodeID: "node-0000", HTTPAddr: "127.0.0.1:1"})
	if err != nil {
		b.Fatal(err)
	}
	st := largeState(b, 1000, 65536)
	now := time.Now()
	for _, tc := range []struct {
		name   string
		change PlanChange
	}{
		{"join", PlanChange{Join: []string{"node-new"}, Weight: 1}},
		{"drain", PlanChange{Drain: []string{"node-0500"}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				info, _, err := ck.dryRun(st, tc.change, now)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(info.Copies), "copies")
				b.ReportMetric(float64(info.Steps), "steps")
			}
		})
	}
}
