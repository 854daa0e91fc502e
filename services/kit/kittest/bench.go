package kittest

import (
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// Throughput runs the services' throughput benchmarks: each op measured
// against a ceiling measured in the same run, so that a result on a
// machine shared with other work still compares.
type Throughput struct {
	// Callers is how many goroutines call op at once.
	Callers int
	// Keys is how many keys op is given: a random one of [0, Keys) a call.
	Keys int

	ceiling float64
}

// Run calls op from Callers goroutines b.N times in all, and reports its
// ops/s and cpu-µs/op (the CPU time of the whole process, clients and
// nodes, per op: steadier than ops/s on a shared machine). A run with
// isCeiling sets the ceiling; any other reports of-echo, its ops/s as a
// fraction of the last ceiling. An op that fails fails the benchmark.
func (tp *Throughput) Run(b *testing.B, isCeiling bool, op func(i int) error) {
	b.SetParallelism((tp.Callers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	cpu0 := CPUTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(rand.IntN(tp.Keys)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	opsPerSec := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(opsPerSec, "ops/s")
	b.ReportMetric(float64((CPUTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	if isCeiling {
		tp.ceiling = opsPerSec
	} else {
		b.ReportMetric(opsPerSec/tp.ceiling, "of-echo")
	}
}

// NewEcho starts the ceiling's server: a bare net/http server that
// answers each request with its body, as JSON. Close it when done.
func NewEcho() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
}

// CPUTime returns the CPU time (user and system) this process has used,
// 0 if the system does not say.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
