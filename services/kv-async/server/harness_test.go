package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
	"clusterkit.dev/services/kv-async/client"
)

// testCluster is a cktest cluster with a kv-async server on every node.
type testCluster struct {
	*cktest.Cluster
	t   testing.TB
	cfg Config

	mu      sync.Mutex
	servers map[int]*Server
}

// newCluster starts n nodes with a server each; cfg's DataDir is ignored
// (each node gets one under its cktest data dir).
func newCluster(t testing.TB, n int, cfg Config, opts ...cktest.Option) *testCluster {
	t.Helper()
	tc := &testCluster{t: t, cfg: cfg, servers: map[int]*Server{}}
	opts = append(opts, cktest.WithInit(tc.attach))
	tc.Cluster = cktest.New(t, n, opts...)
	t.Cleanup(func() {
		tc.StopAll()
		tc.mu.Lock()
		defer tc.mu.Unlock()
		for i, s := range tc.servers {
			s.Close()
			delete(tc.servers, i)
		}
	})
	tc.WaitConverged()
	return tc
}

// attach builds member m's server on its new ClusterKit, closing the
// server of its previous life if any.
func (tc *testCluster) attach(m *cktest.Member, ck *clusterkit.ClusterKit) {
	cfg := tc.cfg
	cfg.DataDir = filepath.Join(m.Options.DataDir, "kv")
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{tc.t}, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", m.ID)
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if old := tc.servers[m.Index]; old != nil {
		old.Close()
	}
	s, err := New(ck, cfg)
	if err != nil {
		panic(fmt.Sprintf("server for %s: %v", m.ID, err))
	}
	tc.servers[m.Index] = s
}

// server returns member i's current server.
func (tc *testCluster) server(i int) *Server {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.servers[i]
}

// kill stops member i's ClusterKit and its server as a crash of the
// process would: no leave, no flush of pending replication; the store is
// closed with what its log holds, to be replayed by the next start.
func (tc *testCluster) kill(i int) {
	tc.Stop(i)
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if s := tc.servers[i]; s != nil {
		s.crash()
		delete(tc.servers, i)
	}
}

// client returns a kv-async client seeded with every running member.
func (tc *testCluster) client() *client.Client {
	tc.t.Helper()
	var seeds []string
	for _, m := range tc.Running() {
		seeds = append(seeds, m.HTTPAddr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.New(ctx, seeds)
	if err != nil {
		tc.t.Fatalf("client: %v", err)
	}
	tc.t.Cleanup(func() { c.Close() })
	return c
}

// waitReplicated waits until every running node reports, over its HTTP
// API, that no replica lags behind it.
func (tc *testCluster) waitReplicated() {
	tc.t.Helper()
	tc.Eventually("replication lag 0 on every node", func() error {
		for _, m := range tc.Running() {
			var st ReplicationStatus
			if err := getJSON(m.URL("/kv/replication"), &st); err != nil {
				return err
			}
			if st.Operations != 0 {
				return fmt.Errorf("%s: %d operations not yet replicated (oldest %.1fs)", m.ID, st.Operations, st.Seconds)
			}
			if st.MapVersion != m.CK.Version() {
				return fmt.Errorf("%s: status of map %d, node at %d", m.ID, st.MapVersion, m.CK.Version())
			}
		}
		return nil
	})
}

func getJSON(url string, out any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return json.Unmarshal(b, out)
}

// testWriter sends log lines to t.Log; lines after the test ended are
// dropped.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
