package clusterkit_test

import (
	"fmt"
	"testing"
	"time"

	"clusterkit.dev/clusterkit/cktest"
)

// BenchmarkFormation starts n nodes at once, all given the same join list,
// and reports the seconds from the start until every node serves the same
// map in which all n own partitions.
//
//	go test -run '^$' -bench Formation -benchtime 5x .
func BenchmarkFormation(b *testing.B) {
	for _, n := range []int{3, 10} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			var total, worst time.Duration
			for i := 0; i < b.N; i++ {
				c := cktest.NewStopped(b, n)
				start := time.Now()
				c.StartAll()
				c.Eventually("convergence", func() error { return c.Converged(true) })
				d := time.Since(start)
				total += d
				worst = max(worst, d)
				c.StopAll()
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/converge")
			b.ReportMetric(worst.Seconds(), "s/worst")
		})
	}
}
