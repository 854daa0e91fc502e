package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/cockroachdb/pebble/v2/vfs"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
	"clusterkit.dev/services/kit/migrate"
	"clusterkit.dev/services/kv-sync/client"
)

// testConfig is LocalConfig with failure detection slow enough that a
// loaded test machine does not declare live nodes dead: 2s without a
// heartbeat.
func testConfig() clusterkit.Config {
	cfg := clusterkit.LocalConfig()
	cfg.SuspectTimeout = time.Second
	cfg.DeadTimeout = 2 * time.Second
	return cfg
}

// testCluster is a cktest cluster with a Server on every member.
type testCluster struct {
	t      testing.TB
	c      *cktest.Cluster
	client *http.Client

	mu      sync.Mutex
	servers map[int]*Server
	errs    []error
}

// newTestCluster starts n nodes, each with a Server configured by cfg (its
// DataDir is the member's), and waits until the map is settled and every
// owner holds its partitions.
func newTestCluster(t testing.TB, n int, cfg Config, opts ...cktest.Option) *testCluster {
	t.Helper()
	return newTestClusterFS(t, n, cfg, nil, opts...)
}

// newTestClusterFS is newTestCluster with the store of member i on fs(i)
// each time it starts.
func newTestClusterFS(t testing.TB, n int, cfg Config, fs func(i int) vfs.FS, opts ...cktest.Option) *testCluster {
	t.Helper()
	tc := &testCluster{t: t, servers: map[int]*Server{}, client: &http.Client{Timeout: 10 * time.Second}}
	init := cktest.WithInit(func(m *cktest.Member, ck *clusterkit.ClusterKit) {
		c := cfg
		c.DataDir = m.Options.DataDir
		c.Logger = m.Options.Logger
		if fs != nil {
			c.FS = fs(m.Index)
		}
		s, err := New(ck, c)
		tc.mu.Lock()
		defer tc.mu.Unlock()
		if err != nil {
			tc.errs = append(tc.errs, fmt.Errorf("%s: %w", m.ID, err))
			return
		}
		tc.servers[m.Index] = s
	})
	tc.c = cktest.New(t, n, append(append([]cktest.Option{cktest.WithConfig(testConfig())}, opts...), init)...)
	// Runs before cktest's own cleanup: stop the nodes, then the servers.
	t.Cleanup(tc.stopAll)
	tc.checkInit()
	tc.waitSettled()
	return tc
}

func (tc *testCluster) checkInit() {
	tc.t.Helper()
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if len(tc.errs) > 0 {
		tc.t.Fatalf("server.New: %v", tc.errs)
	}
}

func (tc *testCluster) stopAll() {
	tc.c.StopAll()
	tc.mu.Lock()
	defer tc.mu.Unlock()
	for i, s := range tc.servers {
		if err := s.Close(); err != nil {
			tc.t.Errorf("close server %d: %v", i, err)
		}
		delete(tc.servers, i)
	}
	tc.client.CloseIdleConnections()
}

func (tc *testCluster) server(i int) *Server {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.servers[i]
}

// kill stops member i's ClusterKit and its server, with no leave or drain.
func (tc *testCluster) kill(i int) {
	tc.t.Helper()
	tc.c.Stop(i)
	tc.mu.Lock()
	s := tc.servers[i]
	delete(tc.servers, i)
	tc.mu.Unlock()
	if s != nil {
		if err := s.Close(); err != nil {
			tc.t.Errorf("close server %d: %v", i, err)
		}
	}
}

// start restarts member i from its data directory.
func (tc *testCluster) start(i int) {
	tc.t.Helper()
	tc.c.Start(i)
	tc.checkInit()
}

// add starts a new member with a server and returns its index.
func (tc *testCluster) add() int {
	tc.t.Helper()
	m := tc.c.Add()
	tc.checkInit()
	return m.Index
}

// waitSettled waits until the running members agree on a map with no
// handoff in flight and every owner of every partition has its data.
func (tc *testCluster) waitSettled() {
	tc.t.Helper()
	tc.c.WaitConverged()
	tc.c.Eventually("every owner holds its partitions", func() error {
		running := tc.c.Running()
		for _, m := range running {
			s := tc.server(m.Index)
			if s == nil {
				return fmt.Errorf("%s has no server", m.ID)
			}
			for _, p := range m.CK.Partitions() {
				if len(p.JoiningNodes) > 0 {
					return fmt.Errorf("%s: %s still joining", p.ID, p.JoiningNodes)
				}
				if migrate.Owner(&p, m.ID) && !s.parts.Get(p.Index).Owned() {
					return fmt.Errorf("%s: %s not ready", m.ID, p.ID)
				}
			}
		}
		return nil
	})
}

// owners returns the primary and replicas of key in member i's map.
func (tc *testCluster) owners(i int, key string) []string {
	tc.t.Helper()
	p, err := tc.c.Member(i).CK.GetPartition(key)
	if err != nil {
		tc.t.Fatalf("partition of %q: %v", key, err)
	}
	return append([]string{p.PrimaryNode}, p.ReplicaNodes...)
}

// index returns the member index of node id.
func (tc *testCluster) index(id string) int {
	for _, m := range tc.c.Members() {
		if m.ID == id {
			return m.Index
		}
	}
	tc.t.Fatalf("no member %s", id)
	return -1
}

// answer is a decoded KV answer.
type answer struct {
	status  int
	body    []byte
	header  http.Header
	value   string
	version *versionJSON
	err     string
}

type versionJSON struct {
	Counter uint64 `json:"counter"`
	Writer  uint64 `json:"writer"`
}

func (tc *testCluster) do(i int, method, path string, body []byte, header http.Header) answer {
	tc.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, tc.c.Member(i).URL(path), rd)
	if err != nil {
		tc.t.Fatal(err)
	}
	maps := req.Header
	for k, v := range header {
		maps[k] = v
	}
	resp, err := tc.client.Do(req)
	if err != nil {
		return answer{status: -1, err: err.Error()}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{status: -1, err: err.Error()}
	}
	a := answer{status: resp.StatusCode, body: b, header: resp.Header}
	var decoded struct {
		Value   string       `json:"value"`
		Version *versionJSON `json:"version"`
		Error   string       `json:"error"`
	}
	if json.Unmarshal(b, &decoded) == nil {
		a.value, a.version, a.err = decoded.Value, decoded.Version, decoded.Error
	}
	return a
}

func (tc *testCluster) get(i int, key string) answer {
	tc.t.Helper()
	return tc.do(i, http.MethodGet, "/kv/get?key="+url.QueryEscape(key), nil, nil)
}

func (tc *testCluster) getLocal(i int, key string) answer {
	tc.t.Helper()
	return tc.do(i, http.MethodGet, "/kv/get?local=true&key="+url.QueryEscape(key), nil, nil)
}

// newClient returns a quorum client seeded with every member, closed when
// the test ends.
func (tc *testCluster) newClient(opts ...client.Option) *client.Client {
	tc.t.Helper()
	var seeds []string
	for _, m := range tc.c.Members() {
		seeds = append(seeds, m.HTTPAddr())
	}
	c, err := client.New(context.Background(), seeds, opts...)
	if err != nil {
		tc.t.Fatalf("client: %v", err)
	}
	tc.t.Cleanup(func() { _ = c.Close() })
	return c
}

// writeKeys sets n keys "<prefix>-<i>" to "<value>-<i>" with c, 16 at a
// time, and returns the values acknowledged.
func (tc *testCluster) writeKeys(c *client.Client, prefix, value string, n int) map[string]string {
	tc.t.Helper()
	acked := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range work {
				k, v := fmt.Sprintf("%s-%d", prefix, i), fmt.Sprintf("%s-%d", value, i)
				if _, err := c.Set(context.Background(), k, v); err == nil {
					mu.Lock()
					acked[k] = v
					mu.Unlock()
				} else {
					tc.t.Errorf("set %s: %v", k, err)
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	return acked
}

// checkQuorumReads reads every key with c.
func (tc *testCluster) checkQuorumReads(c *client.Client, want map[string]string) {
	tc.t.Helper()
	tc.forEach(want, func(key, value string) error {
		got, _, err := c.Get(context.Background(), key)
		if err != nil || got != value {
			return fmt.Errorf("get %s: %q, %v; want %q", key, got, err, value)
		}
		return nil
	})
}

// checkReads reads every key through every running member, each running
// the quorum read.
func (tc *testCluster) checkReads(want map[string]string) {
	tc.t.Helper()
	tc.forEach(want, func(key, value string) error {
		for _, m := range tc.c.Running() {
			if a := tc.get(m.Index, key); a.status != http.StatusOK || a.value != value {
				return fmt.Errorf("get %s via %s: %d %s, want %q", key, m.ID, a.status, a.body, value)
			}
		}
		return nil
	})
}

// checkOwners reads every key from the local store of every running owner.
func (tc *testCluster) checkOwners(want map[string]string) {
	tc.t.Helper()
	running := map[string]bool{}
	for _, m := range tc.c.Running() {
		running[m.ID] = true
	}
	ref := tc.c.Running()[0].Index
	tc.forEach(want, func(key, value string) error {
		for _, id := range tc.owners(ref, key) {
			if !running[id] {
				continue
			}
			if a := tc.getLocal(tc.index(id), key); a.status != http.StatusOK || a.value != value {
				return fmt.Errorf("local get %s on owner %s: %d %s, want %q", key, id, a.status, a.body, value)
			}
		}
		return nil
	})
}

// forEach runs check on every key, 8 at a time, and fails the test with the
// first errors.
func (tc *testCluster) forEach(want map[string]string, check func(key, value string) error) {
	tc.t.Helper()
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	work := make(chan string)
	for range 8 {
		wg.Go(func() {
			for k := range work {
				if err := check(k, want[k]); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, k := range keys {
		work <- k
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		tc.t.Fatalf("%d of %d keys failed; first: %v", len(errs), len(keys), errs[:min(5, len(errs))])
	}
}
