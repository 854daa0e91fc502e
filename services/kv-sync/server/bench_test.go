package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkThroughput measures the quorum client on a 3-node loopback
// cluster with 16 concurrent callers sharing one client and 128-byte
// values, against a ceiling measured in the same run: a bare net/http
// server that echoes a request of the same size, driven by a client of the
// same kind (the SDK's pooled HTTP client). Each result reports ops/s and
// its fraction of the ceiling (of-echo).
//
//	go test -run '^$' -bench Throughput -benchtime 5s ./server/
func BenchmarkThroughput(b *testing.B) {
	const callers, keys = 16, 10000
	value := strings.Repeat("v", 128)
	parallelism := (callers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0)
	var ceiling float64
	run := func(b *testing.B, isCeiling bool, op func(i int) error) {
		b.SetParallelism(parallelism)
		cpu0 := cpuTime()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := op(rand.IntN(keys)); err != nil {
					b.Error(err)
					return
				}
			}
		})
		opsPerSec := float64(b.N) / b.Elapsed().Seconds()
		b.ReportMetric(opsPerSec, "ops/s")
		// CPU time of the whole process (clients, nodes) per op: steadier
		// than ops/s on a machine shared with other work.
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		if isCeiling {
			ceiling = opsPerSec
		} else {
			b.ReportMetric(opsPerSec/ceiling, "of-echo")
		}
	}

	for _, noSync := range []bool{false, true} {
		tc := newTestCluster(b, 3, Config{NoSync: noSync})
		c := tc.newClient()
		ctx := context.Background()
		if !noSync {
			// The ceiling, with the same pooled HTTP client.
			hc := c.SDK().HTTPClient()
			body := []byte(fmt.Sprintf(`{"key":"key-1234","value":%q}`, value))
			echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(b)
			}))
			b.Run("echo", func(b *testing.B) {
				run(b, true, func(int) error {
					resp, err := hc.Post(echo.URL+"/kv/set", "application/json", bytes.NewReader(body))
					if err != nil {
						return err
					}
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					return err
				})
			})
			echo.Close()
		}
		name := "set"
		if noSync {
			name = "set/nosync"
		}
		b.Run(name, func(b *testing.B) {
			run(b, false, func(i int) error {
				_, err := c.Set(ctx, fmt.Sprintf("key-%d", i), value)
				return err
			})
		})
		if !noSync {
			var preload sync.Once
			b.Run("get", func(b *testing.B) {
				preload.Do(func() {
					for i := range keys {
						if _, err := c.Set(ctx, fmt.Sprintf("key-%d", i), value); err != nil {
							b.Fatal(err)
						}
					}
				})
				run(b, false, func(i int) error {
					_, _, err := c.Get(ctx, fmt.Sprintf("key-%d", i))
					return err
				})
			})
		}
		_ = c.Close()
		tc.StopAll()
	}
}

// cpuTime returns the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
