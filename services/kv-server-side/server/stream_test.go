package server

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kv-server-side/internal/store"
)

// TestStalledCopySourceFailsTheCopy copies a partition from a source that
// stops sending, before its answer's header or after one record, and
// expects the copy to fail within CopyIdleTimeout and a margin, not to
// wait for CopyTimeout.
func TestStalledCopySourceFailsTheCopy(t *testing.T) {
	const idle = 500 * time.Millisecond
	tc := newTestCluster(t, 1, Config{CopyIdleTimeout: idle})
	s := tc.server(0)
	for _, tt := range []struct {
		name      string
		sendFirst bool
	}{{"before the header", false}, {"mid-stream", true}} {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.sendFirst {
					w.WriteHeader(http.StatusOK)
					rec := store.Record{Key: "k", Value: []byte("v"), Version: store.Version{Epoch: 1, Seq: 1}}
					_, _ = w.Write(appendRecordFrame(nil, &rec))
					w.(http.Flusher).Flush()
				}
				select {
				case <-r.Context().Done():
				case <-release:
				}
			}))
			defer src.Close()
			defer close(release)
			node := &clusterkit.Node{ID: "stalled", IP: strings.TrimPrefix(src.URL, "http://")}
			start := time.Now()
			records, _, err := s.pull(context.Background(), 0, node)
			took := time.Since(start)
			if !errors.Is(err, errStreamIdle) {
				t.Fatalf("copy from a stalled source: %v, want %v", err, errStreamIdle)
			}
			if took < idle || took > idle+time.Second {
				t.Errorf("the copy failed after %v, want %v to %v", took, idle, idle+time.Second)
			}
			if want := map[bool]int{false: 0, true: 1}[tt.sendFirst]; records != want {
				t.Errorf("merged %d records before the stall, want %d", records, want)
			}
			t.Logf("failed after %v: %v", took.Round(time.Millisecond), err)
		})
	}
}
