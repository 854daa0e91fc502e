package kittest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
)

// Config is clusterkit.LocalConfig with failure detection slow enough that
// a loaded test machine does not declare live nodes dead: 2s without a
// heartbeat.
func Config() clusterkit.Config {
	cfg := clusterkit.LocalConfig()
	cfg.SuspectTimeout = time.Second
	cfg.DeadTimeout = 2 * time.Second
	return cfg
}

// Server is what Cluster needs of a service's server.
type Server interface {
	Close() error
}

// Cluster is a cktest cluster (real nodes, real raft over loopback TCP)
// with a service's server on every member. V is the JSON form of the
// service's versions, as answers carry them.
type Cluster[S Server, V any] struct {
	T testing.TB
	C *cktest.Cluster
	// Client sends Do's requests; Token is the cluster token Do sends,
	// "" for none.
	Client *http.Client
	Token  string

	ready func(m *cktest.Member, s S, p *clusterkit.Partition) error

	mu      sync.Mutex
	servers map[int]S
	errs    []error
}

// NewCluster starts n nodes, each with the server newServer makes on its
// ClusterKit (before it starts: see cktest.WithInit), and waits until the
// map is settled and ready holds for every owner of every partition
// (WaitSettled). opts come after Config, so they may replace it. The
// servers are closed after their nodes stop, when the test ends.
func NewCluster[S Server, V any](t testing.TB, n int,
	newServer func(m *cktest.Member, ck *clusterkit.ClusterKit) (S, error),
	ready func(m *cktest.Member, s S, p *clusterkit.Partition) error,
	opts ...cktest.Option) *Cluster[S, V] {
	t.Helper()
	tc := &Cluster[S, V]{T: t, ready: ready, servers: map[int]S{}, Client: &http.Client{Timeout: 10 * time.Second}}
	init := cktest.WithInit(func(m *cktest.Member, ck *clusterkit.ClusterKit) {
		s, err := newServer(m, ck)
		tc.mu.Lock()
		defer tc.mu.Unlock()
		if err != nil {
			tc.errs = append(tc.errs, fmt.Errorf("%s: %w", m.ID, err))
			return
		}
		tc.servers[m.Index] = s
	})
	tc.C = cktest.New(t, n, append(append([]cktest.Option{cktest.WithConfig(Config())}, opts...), init)...)
	// Runs before cktest's own cleanup: stop the nodes, then the servers.
	t.Cleanup(tc.StopAll)
	tc.checkInit()
	tc.WaitSettled()
	return tc
}

func (tc *Cluster[S, V]) checkInit() {
	tc.T.Helper()
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if len(tc.errs) > 0 {
		tc.T.Fatalf("new server: %v", tc.errs)
	}
}

// StopAll stops every node, then closes its server.
func (tc *Cluster[S, V]) StopAll() {
	tc.C.StopAll()
	tc.mu.Lock()
	defer tc.mu.Unlock()
	for i, s := range tc.servers {
		if err := s.Close(); err != nil {
			tc.T.Errorf("close server %d: %v", i, err)
		}
		delete(tc.servers, i)
	}
	tc.Client.CloseIdleConnections()
}

// Server returns member i's server: the zero S (nil) when it has none
// (it is stopped).
func (tc *Cluster[S, V]) Server(i int) S {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.servers[i]
}

// Kill stops member i's ClusterKit and its server, with no leave or drain.
func (tc *Cluster[S, V]) Kill(i int) {
	tc.T.Helper()
	tc.C.Stop(i)
	tc.mu.Lock()
	s, ok := tc.servers[i]
	delete(tc.servers, i)
	tc.mu.Unlock()
	if ok {
		if err := s.Close(); err != nil {
			tc.T.Errorf("close server %d: %v", i, err)
		}
	}
}

// Start restarts member i from its data directory.
func (tc *Cluster[S, V]) Start(i int) {
	tc.T.Helper()
	tc.C.Start(i)
	tc.checkInit()
}

// Add starts a new member with a server and returns its index.
func (tc *Cluster[S, V]) Add() int {
	tc.T.Helper()
	m := tc.C.Add()
	tc.checkInit()
	return m.Index
}

// WaitSettled waits until the running members agree on a map with no
// handoff in flight and the service's ready check holds for every
// partition each running member owns.
func (tc *Cluster[S, V]) WaitSettled() {
	tc.T.Helper()
	tc.C.WaitConverged()
	tc.C.Eventually("every owner holds its partitions", func() error {
		for _, m := range tc.C.Running() {
			tc.mu.Lock()
			s, ok := tc.servers[m.Index]
			tc.mu.Unlock()
			if !ok {
				return fmt.Errorf("%s has no server", m.ID)
			}
			for _, p := range m.CK.Partitions() {
				if len(p.JoiningNodes) > 0 {
					return fmt.Errorf("%s: %s still joining", p.ID, p.JoiningNodes)
				}
				if err := tc.ready(m, s, &p); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// Owners returns the primary and replicas of key in member i's map.
func (tc *Cluster[S, V]) Owners(i int, key string) []string {
	tc.T.Helper()
	p, err := tc.C.Member(i).CK.GetPartition(key)
	if err != nil {
		tc.T.Fatalf("partition of %q: %v", key, err)
	}
	return append([]string{p.PrimaryNode}, p.ReplicaNodes...)
}

// Index returns the member index of node id.
func (tc *Cluster[S, V]) Index(id string) int {
	for _, m := range tc.C.Members() {
		if m.ID == id {
			return m.Index
		}
	}
	tc.T.Fatalf("no member %s", id)
	return -1
}

// Answer is a decoded answer of the KV API.
type Answer[V any] struct {
	Status  int // -1 when the request failed
	Body    []byte
	Header  http.Header
	Value   string
	Version *V
	Err     string
}

// Do sends a request to member i with Token and header, and decodes the
// answer.
func (tc *Cluster[S, V]) Do(i int, method, path string, body []byte, header http.Header) Answer[V] {
	tc.T.Helper()
	return tc.DoAs(tc.Token, i, method, path, body, header)
}

// DoAs is Do with token as the cluster token ("" sends none).
func (tc *Cluster[S, V]) DoAs(token string, i int, method, path string, body []byte, header http.Header) Answer[V] {
	tc.T.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, tc.C.Member(i).URL(path), rd)
	if err != nil {
		tc.T.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := tc.Client.Do(req)
	if err != nil {
		return Answer[V]{Status: -1, Err: err.Error()}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Answer[V]{Status: -1, Err: err.Error()}
	}
	a := Answer[V]{Status: resp.StatusCode, Body: b, Header: resp.Header}
	var decoded struct {
		Value   string `json:"value"`
		Version *V     `json:"version"`
		Error   string `json:"error"`
	}
	if json.Unmarshal(b, &decoded) == nil {
		a.Value, a.Version, a.Err = decoded.Value, decoded.Version, decoded.Error
	}
	return a
}

// Get reads key through member i (GET /kv/get).
func (tc *Cluster[S, V]) Get(i int, key string) Answer[V] {
	tc.T.Helper()
	return tc.Do(i, http.MethodGet, "/kv/get?key="+url.QueryEscape(key), nil, nil)
}

// GetLocal reads key from member i's own store (GET /kv/get?local=true).
func (tc *Cluster[S, V]) GetLocal(i int, key string) Answer[V] {
	tc.T.Helper()
	return tc.Do(i, http.MethodGet, "/kv/get?local=true&key="+url.QueryEscape(key), nil, nil)
}

// CheckReads reads every key of want through every running member.
func (tc *Cluster[S, V]) CheckReads(want map[string]string) {
	tc.T.Helper()
	tc.ForEach(want, func(key, value string) error {
		for _, m := range tc.C.Running() {
			if a := tc.Get(m.Index, key); a.Status != http.StatusOK || a.Value != value {
				return fmt.Errorf("get %s via %s: %d %s, want %q", key, m.ID, a.Status, a.Body, value)
			}
		}
		return nil
	})
}

// CheckOwners reads every key of want from the local store of every
// running owner.
func (tc *Cluster[S, V]) CheckOwners(want map[string]string) {
	tc.T.Helper()
	running := map[string]bool{}
	for _, m := range tc.C.Running() {
		running[m.ID] = true
	}
	ref := tc.C.Running()[0].Index
	tc.ForEach(want, func(key, value string) error {
		for _, id := range tc.Owners(ref, key) {
			if !running[id] {
				continue
			}
			if a := tc.GetLocal(tc.Index(id), key); a.Status != http.StatusOK || a.Value != value {
				return fmt.Errorf("local get %s on owner %s: %d %s, want %q", key, id, a.Status, a.Body, value)
			}
		}
		return nil
	})
}

// ForEach runs check on every key of want, 8 at a time, and fails the
// test with the first errors.
func (tc *Cluster[S, V]) ForEach(want map[string]string, check func(key, value string) error) {
	tc.T.Helper()
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
		tc.T.Fatalf("%d of %d keys failed; first: %v", len(errs), len(keys), errs[:min(5, len(errs))])
	}
}

// WriteKeys sets n keys "<prefix>-<i>" to "<value>-<i>" with set, 16 at a
// time, and returns the values acknowledged (set returned nil); a failed
// set fails the test.
func WriteKeys(t testing.TB, prefix, value string, n int, set func(key, value string) error) map[string]string {
	t.Helper()
	acked := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range work {
				k, v := fmt.Sprintf("%s-%d", prefix, i), fmt.Sprintf("%s-%d", value, i)
				if err := set(k, v); err != nil {
					t.Errorf("set %s: %v", k, err)
					continue
				}
				mu.Lock()
				acked[k] = v
				mu.Unlock()
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
