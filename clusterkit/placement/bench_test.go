package placement

import (
	"fmt"
	"testing"
)

// BenchmarkCompute measures Compute from scratch, for one join and for one
// leave, at the sizes DESIGN.md reports.
func BenchmarkCompute(b *testing.B) {
	for _, size := range []struct{ nodes, partitions int }{
		{10, 271},
		{10, 4096},
		{1000, 65536},
	} {
		cfg := Config{Partitions: size.partitions, ReplicationFactor: 3}
		nodes := makeNodes(size.nodes)
		base, err := Compute(nil, nodes, cfg)
		if err != nil {
			b.Fatal(err)
		}
		joined := append(makeNodes(size.nodes), Node{ID: "node-new"})
		left := without(nodes, nodes[size.nodes/2].ID)
		name := fmt.Sprintf("nodes=%d/partitions=%d", size.nodes, size.partitions)
		b.Run("scratch/"+name, func(b *testing.B) {
			for b.Loop() {
				Compute(nil, nodes, cfg)
			}
		})
		b.Run("join/"+name, func(b *testing.B) {
			for b.Loop() {
				Compute(base, joined, cfg)
			}
		})
		b.Run("leave/"+name, func(b *testing.B) {
			for b.Loop() {
				Compute(base, left, cfg)
			}
		})
	}
}
