package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"clusterkit.dev/services/kit/kittest"
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
	tp := &kittest.Throughput{Callers: callers, Keys: keys}

	for _, noSync := range []bool{false, true} {
		tc := newTestCluster(b, 3, Config{NoSync: noSync})
		c := tc.newClient()
		ctx := context.Background()
		if !noSync {
			// The ceiling, with the same pooled HTTP client.
			hc := c.SDK().HTTPClient()
			body := []byte(fmt.Sprintf(`{"key":"key-1234","value":%q}`, value))
			echo := kittest.NewEcho()
			b.Run("echo", func(b *testing.B) {
				tp.Run(b, true, func(int) error {
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
			tp.Run(b, false, func(i int) error {
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
				tp.Run(b, false, func(i int) error {
					_, _, err := c.Get(ctx, fmt.Sprintf("key-%d", i))
					return err
				})
			})
		}
		_ = c.Close()
		tc.StopAll()
	}
}
