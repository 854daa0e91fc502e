package server

import (
	"bufio"
	"context"
	"encoding/gob"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kit/stream"
	"clusterkit.dev/services/kv-async/internal/store"
)

// A copy source that sends one frame of records and then hangs, the
// connection open, fails the copy once it has been idle for
// StreamIdleTimeout, far sooner than CopyTimeout; the records it sent are
// kept.
func TestCopyFailsWhenTheSourceHangsMidStream(t *testing.T) {
	const idle = time.Second
	tc := newCluster(t, 1, Config{StreamIdleTimeout: idle})
	s := tc.server(0)
	release := make(chan struct{})
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentTypeGob)
		bw := bufio.NewWriter(w)
		var recs []store.Record
		for i := 0; i < 3; i++ {
			recs = append(recs, store.Record{Key: "hung-" + strconv.Itoa(i), Value: []byte("v"), Version: store.Version{Epoch: 1, Seq: uint64(i + 1)}})
		}
		_ = gob.NewEncoder(bw).Encode(streamFrame{Records: recs})
		_ = bw.Flush()
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer src.Close()
	defer close(release)
	node := &clusterkit.Node{ID: "hung-source", IP: strings.TrimPrefix(src.URL, "http://")}

	start := time.Now()
	n, err := s.copyFrom(context.Background(), 0, node)
	took := time.Since(start)
	t.Logf("copy from a source hung mid-stream failed after %v: %v", took, err)
	if !errors.Is(err, stream.ErrIdle) {
		t.Fatalf("copy from a hung source: %v, want stream.ErrIdle", err)
	}
	if took < idle || took > idle+2*time.Second {
		t.Fatalf("copy from a hung source failed after %v, want about the %v idle timeout (copy timeout %v)", took, idle, s.cfg.CopyTimeout)
	}
	if n != 3 {
		t.Fatalf("copy merged %d records before the source hung, want 3", n)
	}
	for i := 0; i < 3; i++ {
		if _, found, err := s.store.Get(0, "hung-"+strconv.Itoa(i)); err != nil || !found {
			t.Fatalf("record %d sent before the hang not kept: found %v, %v", i, found, err)
		}
	}
}
