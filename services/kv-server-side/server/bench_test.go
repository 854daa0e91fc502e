package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"clusterkit.dev/services/kit/kittest"
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

	setBody := func(i int) []byte {
		b, _ := json.Marshal(map[string]string{"key": fmt.Sprintf("key-%d", i), "value": value})
		return b
	}
	bodies := make([][]byte, keys)
	for i := range bodies {
		bodies[i] = setBody(i)
	}
	tp := &kittest.Throughput{Callers: clients, Keys: keys}
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

	echo := kittest.NewEcho()
	defer echo.Close()
	b.Run("echo", func(b *testing.B) {
		tp.Run(b, true, func(i int) error { return do(http.MethodPost, echo.URL+"/kv/set", bodies[i]) })
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
			tp.Run(b, false, func(i int) error { return do(http.MethodPost, urls[rand.IntN(3)]+"/kv/set", bodies[i]) })
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
				tp.Run(b, false, func(i int) error {
					return do(http.MethodGet, urls[rand.IntN(3)]+"/kv/get?key="+url.QueryEscape(fmt.Sprintf("key-%d", i)), nil)
				})
			})
		}
		tc.StopAll()
		time.Sleep(100 * time.Millisecond)
	}
}
