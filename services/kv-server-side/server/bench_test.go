package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkThroughput measures the service on a 3-node loopback cluster
// with 16 concurrent clients and 128-byte values, each request sent to a
// random node, against a ceiling measured in the same run: a bare net/http
// server that echoes the same requests, driven by the same client. Each
// result reports ops/s and its fraction of the ceiling (of-echo).
//
//	go test -run '^$' -bench Throughput -benchtime 5s ./server/
func BenchmarkThroughput(b *testing.B) {
	const clients, keys = 16, 10000
	value := strings.Repeat("v", 128)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * clients, MaxIdleConns: 8 * clients}}
	defer client.CloseIdleConnections()
	parallelism := (clients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0)

	setBody := func(i int) []byte {
		b, _ := json.Marshal(map[string]string{"key": fmt.Sprintf("key-%d", i), "value": value})
		return b
	}
	bodies := make([][]byte, keys)
	for i := range bodies {
		bodies[i] = setBody(i)
	}
	// run drives op from the clients and reports its throughput.
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
	do := func(method, u string, body []byte) error {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequest(method, u, rd)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s %s: %s", method, u, resp.Status)
		}
		return nil
	}

	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	defer echo.Close()
	b.Run("echo", func(b *testing.B) {
		run(b, true, func(i int) error { return do(http.MethodPost, echo.URL+"/kv/set", bodies[i]) })
	})

	for _, mode := range []struct {
		ack    AckMode
		noSync bool
	}{{AckAll, false}, {AckPrimary, false}, {AckAll, true}} {
		ack := mode.ack
		tc := newTestCluster(b, 3, Config{Ack: ack, NoSync: mode.noSync})
		suffix := ""
		if mode.noSync {
			suffix = ",nosync"
		}
		urls := make([]string, 3)
		for i := range urls {
			urls[i] = tc.C.Member(i).URL("")
		}
		b.Run("set/ack="+string(ack)+suffix, func(b *testing.B) {
			run(b, false, func(i int) error { return do(http.MethodPost, urls[rand.IntN(3)]+"/kv/set", bodies[i]) })
		})
		if ack == AckAll && !mode.noSync {
			var preload sync.Once
			b.Run("get", func(b *testing.B) {
				preload.Do(func() {
					for i := range keys {
						if err := do(http.MethodPost, urls[i%3]+"/kv/set", bodies[i]); err != nil {
							b.Fatal(err)
						}
					}
				})
				run(b, false, func(i int) error {
					return do(http.MethodGet, urls[rand.IntN(3)]+"/kv/get?key="+url.QueryEscape(fmt.Sprintf("key-%d", i)), nil)
				})
			})
		}
		tc.StopAll()
		time.Sleep(100 * time.Millisecond)
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
