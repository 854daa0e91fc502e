package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			t.Errorf("asked %s", r.URL.Path)
		}
		w.WriteHeader(status)
	}))
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	addr := ":" + port // as HTTP_ADDR is usually given: any interface
	if err := healthcheck(addr); err != nil {
		t.Fatalf("healthy node: %v", err)
	}
	status = http.StatusServiceUnavailable
	if err := healthcheck(addr); err == nil {
		t.Fatal("a 503 passed the health check")
	}
	srv.Close()
	if err := healthcheck(addr); err == nil {
		t.Fatal("a stopped node passed the health check")
	}
	if err := healthcheck("no-port"); err == nil {
		t.Fatal("a malformed HTTP_ADDR passed")
	}
}
