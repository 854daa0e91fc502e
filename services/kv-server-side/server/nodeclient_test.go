package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
)

// echoNode answers a post with its body, the sender's ID and a map
// version, and counts the connections it accepted.
func echoNode(t *testing.T, conns *atomic.Int32) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		w.Header().Set(clusterkit.HeaderMapVersion, "7")
		_, _ = io.WriteString(w, r.Header.Get(headerForwardedBy)+":"+r.Header.Get(clusterkit.HeaderMapVersion)+":"+string(body))
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func TestNodeClientReusesConnections(t *testing.T) {
	var conns atomic.Int32
	srv := echoNode(t, &conns)
	addr := strings.TrimPrefix(srv.URL, "http://")
	nc := newNodeClient(nil, "")
	defer nc.close()
	for i := range 20 {
		a, err := nc.post(context.Background(), addr, "/kv/internal/replicate", "node-1", uint64(i), []byte("batch"))
		if err != nil {
			t.Fatal(err)
		}
		if want := "node-1:" + strconv.Itoa(i) + ":batch"; a.status != http.StatusOK || string(a.body) != want || a.mapVersion != 7 {
			t.Fatalf("answer %d: %d %q version %d; want 200 %q version 7", i, a.status, a.body, a.mapVersion, want)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("20 sequential posts opened %d connections, want 1", n)
	}
	// An answer that closes its connection is returned, and the
	// connection is not reused: the first takes the idle connection, each
	// later post needs a new one.
	for range 2 {
		if a, err := nc.post(context.Background(), addr, "/close", "node-1", 1, nil); err != nil || a.status != http.StatusOK {
			t.Fatalf("post to /close: %v %v", a.status, err)
		}
	}
	if _, err := nc.post(context.Background(), addr, "/kv/internal/replicate", "node-1", 1, nil); err != nil {
		t.Fatal(err)
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections after two answers that close theirs, want 3", n)
	}
}

func TestNodeClientRetriesAConnectionClosedWhileIdle(t *testing.T) {
	var conns atomic.Int32
	srv := echoNode(t, &conns)
	addr := strings.TrimPrefix(srv.URL, "http://")
	nc := newNodeClient(nil, "")
	defer nc.close()
	if _, err := nc.post(context.Background(), addr, "/kv/internal/forward", "n", 1, []byte("a")); err != nil {
		t.Fatal(err)
	}
	// The other node drops its idle connections, as a restart would.
	srv.CloseClientConnections()
	a, err := nc.post(context.Background(), addr, "/kv/internal/forward", "n", 1, []byte("b"))
	if err != nil || string(a.body) != "n:1:b" {
		t.Fatalf("post after the idle connection was closed: %q %v", a.body, err)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

func TestNodeClientStopsWithItsContext(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	defer close(release)
	nc := newNodeClient(nil, "")
	defer nc.close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := nc.post(ctx, strings.TrimPrefix(srv.URL, "http://"), "/kv/internal/replicate", "n", 1, []byte("x"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("post to a node that never answers: %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the post returned after %v", d)
	}
	// A node that is not listening: a dial error, which tells the caller
	// the request was not sent.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	_, err = nc.post(context.Background(), dead, "/kv/internal/forward", "n", 1, nil)
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		t.Fatalf("post to a closed port: %v, want a dial error", err)
	}
	nc.close()
	if _, err := nc.post(context.Background(), dead, "/kv/internal/forward", "n", 1, nil); !errors.Is(err, errClosing) {
		t.Fatalf("post after close: %v, want errClosing", err)
	}
}
