package server

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kv-sync/internal/store"
)

// hangingSource serves /kv/stream as a source that sends `records` record
// frames of partition p and then hangs: the connection stays open and
// nothing more is sent until the test ends.
func hangingSource(t *testing.T, records int) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusOK)
		bw := bufio.NewWriter(w)
		var buf []byte
		for i := 0; i < records; i++ {
			rec := store.Record{Key: "hung-" + strconv.Itoa(i), Value: []byte("v"), Version: store.Version{Counter: uint64(i + 1), Writer: 1}}
			buf = appendRecordFrame(buf[:0], &rec)
			_, _ = bw.Write(buf)
		}
		_ = bw.Flush()
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() {
		close(release)
		src.Close()
	})
	return src
}

// A copy source that stops sending mid-stream fails the copy once it has
// been idle for StreamIdleTimeout, far sooner than CopyTimeout, and what
// it sent before is kept.
func TestCopyFailsWhenTheSourceHangsMidStream(t *testing.T) {
	const idle = time.Second
	tc := newTestCluster(t, 1, Config{StreamIdleTimeout: idle})
	s := tc.server(0)
	src := hangingSource(t, 3)
	node := &clusterkit.Node{ID: "hung-source", IP: strings.TrimPrefix(src.URL, "http://")}

	start := time.Now()
	records, _, err := s.pull(context.Background(), 0, node)
	took := time.Since(start)
	t.Logf("copy from a source hung mid-stream failed after %v: %v", took, err)
	if !errors.Is(err, errStreamIdle) {
		t.Fatalf("copy from a hung source: %v, want errStreamIdle", err)
	}
	if took < idle || took > idle+2*time.Second {
		t.Fatalf("copy from a hung source failed after %v, want about the %v idle timeout (copy timeout %v)", took, idle, s.cfg.CopyTimeout)
	}
	if records != 3 {
		t.Fatalf("copy read %d records before the source hung, want 3", records)
	}
	for i := 0; i < 3; i++ {
		if _, found, err := s.store.Get(0, "hung-"+strconv.Itoa(i)); err != nil || !found {
			t.Fatalf("record %d sent before the hang not kept: found %v, %v", i, found, err)
		}
	}
}
