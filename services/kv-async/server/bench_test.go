package server

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The benchmarks run a 3-node cluster on 127.0.0.1 (16 partitions, 3
// owners each) and a client in the same process, which share the
// machine's cores; 32 concurrent callers (b.SetParallelism(16) per core
// on 2 cores) write or read 128-byte values. They report ops/s. Run them
// with
//
//	go test -run '^$' -bench . -benchtime 20000x ./server/
//
// The load generator (loadtest/, see README.md) measures separate
// processes against an HTTP ceiling, and is the reference.

var value128 = strings.Repeat("v", 128)

// nodeDefaults is the node binary's configuration (see config.go).
var nodeDefaults = Config{SyncWindow: 20 * time.Millisecond, ReplicationInterval: 10 * time.Millisecond}

func BenchmarkSet(b *testing.B) {
	b.Run("SyncWindow=20ms", func(b *testing.B) { benchmarkSet(b, nodeDefaults) })
	b.Run("SyncWindow=0", func(b *testing.B) { benchmarkSet(b, Config{ReplicationInterval: nodeDefaults.ReplicationInterval}) })
}

func benchmarkSet(b *testing.B, cfg Config) {
	tc := newCluster(b, 3, cfg)
	c := tc.client()
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			i := n.Add(1)
			if err := c.Set(ctx, "bench-"+strconv.FormatInt(i, 10), value128); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
	b.StopTimer()
	tc.waitReplicated()
}

func BenchmarkGet(b *testing.B) {
	tc := newCluster(b, 3, nodeDefaults)
	c := tc.client()
	const keys = 10000
	writeKeys(b, c, 0, keys, value128)
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			i := int(n.Add(1) % keys)
			if _, err := c.Get(ctx, key(i)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
}
