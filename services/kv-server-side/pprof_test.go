package main

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

func TestServePprof(t *testing.T) {
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	stop, err := servePprof("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	_, addr, ok := strings.Cut(logs.String(), "addr=")
	if !ok {
		t.Fatalf("the address is not logged: %s", logs.String())
	}
	url := "http://" + strings.TrimSpace(addr) + "/debug/pprof/"
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "goroutine") {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	stop()
	if _, err := http.Get(url); err == nil {
		t.Fatal("the profiler still answers after stop")
	}
	if _, err := servePprof("nowhere", log); err == nil || !strings.HasPrefix(err.Error(), "PPROF_ADDR: ") {
		t.Fatalf("bad address: %v", err)
	}
}
