package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// environ returns the process environment as a map.
func environ() map[string]string {
	m := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// healthcheck asks the node listening on httpAddr's port on this host for
// GET /health and returns the exit code: 0 when it answers 200, else 1.
func healthcheck(httpAddr string) int {
	_, port, err := net.SplitHostPort(httpAddr)
	if err != nil || port == "" {
		fmt.Fprintf(os.Stderr, "healthcheck: HTTP_ADDR %q: want host:port or :port\n", httpAddr)
		return 1
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get("http://" + net.JoinHostPort("127.0.0.1", port) + "/health")
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "healthcheck: /health answered", resp.Status)
		return 1
	}
	return 0
}
