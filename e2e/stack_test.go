package e2e_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/e2e"
	"clusterkit.dev/grafana/dashboards"
)

const (
	keys = 1000
	// Host ports of the test's projects, apart from those of a stack a user
	// runs with make up.
	testPromPort = "29090"
)

var testPortPrefix = map[string]string{"sync": "281", "async": "282", "server-side": "283"}

// TestComposeStack brings up each strategy's 10-node cluster with
// Prometheus, under a compose project of its own; writes and reads 1,000
// keys; kills one node's container with SIGKILL (the raft leader's) and
// reads every key again; starts it again and checks that it rejoins and
// serves its data; checks that Prometheus scrapes all ten nodes and that
// every expression of every dashboard panel parses and returns series; and
// removes the project, even when the test fails.
func TestComposeStack(t *testing.T) {
	ctx := context.Background()
	root, promImage := prepare(t)

	// series[expr] is true once the expression returned series in some
	// strategy's run: a service's expressions return series only where
	// that service runs.
	series := map[string]bool{}
	for _, s := range e2e.Strategies {
		s.PortPrefix = testPortPrefix[s.Name]
		t.Run(s.Name, func(t *testing.T) {
			p := &e2e.Project{
				Name:    "ck-e2e-" + s.Name,
				Root:    root,
				Compose: e2e.ComposeCommand(ctx),
				Env: []string{
					"COMPOSE_PROFILES=" + s.Name,
					"PROMETHEUS_IMAGE=" + promImage,
					"PROMETHEUS_PORT=" + testPromPort,
					s.PortEnv + "=" + s.PortPrefix,
				},
				Log: t.Logf,
			}
			testCluster(t, p, s, series)
		})
	}
	if t.Failed() {
		return
	}
	var none []string
	for _, e := range dashboards.Expressions() {
		if !series[e.Expr] {
			none = append(none, fmt.Sprintf("%s / %s: %s", e.Dashboard, e.Panel, e.Expr))
		}
	}
	if len(none) > 0 {
		t.Errorf("%d dashboard expressions returned no series in any strategy's run:\n%s", len(none), strings.Join(none, "\n"))
	}
}

// prepare skips the test where no Docker engine answers; else it builds
// the images and returns the repository's root and the Prometheus image.
func prepare(t *testing.T) (root, promImage string) {
	t.Helper()
	if err := e2e.DockerAvailable(context.Background()); err != nil {
		t.Skipf("skipped: no Docker engine answers (%v)", err)
	}
	root, err := e2e.Root()
	if err != nil {
		t.Fatal(err)
	}
	return root, buildImages(t, root)
}

// buildImages builds the node and load generator images the way make up
// does, and returns the Prometheus image to run.
func buildImages(t *testing.T, root string) string {
	t.Helper()
	start := time.Now()
	for _, args := range [][]string{{"scripts/stack.sh", "images"}} {
		cmd := exec.Command("bash", args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	cmd := exec.Command("bash", "scripts/stack.sh", "prometheus-image")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("prometheus image: %v", err)
	}
	t.Logf("images built in %.1fs", time.Since(start).Seconds())
	return strings.TrimSpace(string(out))
}

func testCluster(t *testing.T, p *e2e.Project, s e2e.Strategy, series map[string]bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	start := time.Now()
	up(t, ctx, p)
	kv := e2e.NewKV(s)
	waitHealthy(t, ctx, p, s)
	version := waitSameMap(t, ctx, kv, nil)
	t.Logf("%s: 10 nodes healthy with one map (version %d) %.1fs after up", s.Service, version, time.Since(start).Seconds())

	values := make(map[string]string, keys)
	for i := range keys {
		values[fmt.Sprintf("e2e-%04d", i)] = fmt.Sprintf("value-%d-%x", i, rand.Uint64())
	}
	parallel(t, values, func(key, value string) error {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return kv.Set(ctx, key, value)
	})
	checkAll(t, ctx, kv, values, "before the kill")
	if s.Name == "async" {
		waitReplicated(t, ctx, kv)
	}

	// Kill the raft leader's container: a crash, with the election on top
	// of the failover.
	leader, err := kv.Map(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	victim, err := e2e.NodeNumber(leader.LeaderID)
	if err != nil {
		t.Fatal(err)
	}
	kill := time.Now()
	if err := p.Kill(ctx, s.NodeService(victim)); err != nil {
		t.Fatal(err)
	}
	kv.SetDown(victim, true)
	if st, err := p.Health(ctx, s.NodeService(victim)); err != nil || st != "exited" {
		t.Fatalf("%s after SIGKILL: %q, %v (want exited: restart: unless-stopped does not restart a killed container)", s.NodeService(victim), st, err)
	}
	checkAll(t, ctx, kv, values, "with the leader killed")
	t.Logf("%s: every key read %.1fs after the leader (%s) was killed", s.Service, time.Since(kill).Seconds(), s.NodeService(victim))

	// Start it again: it rejoins from its volume and serves its data.
	if err := p.Start(ctx, s.NodeService(victim)); err != nil {
		t.Fatal(err)
	}
	restart := time.Now()
	waitHealthy(t, ctx, p, s)
	kv.SetDown(victim, false)
	waitSameMap(t, ctx, kv, func(m *clusterInfo) error {
		for _, n := range m.Nodes {
			if n.ID == s.NodeService(victim) && n.State != "alive" {
				return fmt.Errorf("%s is %s", n.ID, n.State)
			}
		}
		return nil
	})
	t.Logf("%s: %s rejoined %.1fs after its start", s.Service, s.NodeService(victim), time.Since(restart).Seconds())
	checkOwnData(t, ctx, kv, victim, values)
	checkAll(t, ctx, kv, values, "after the restart")

	checkPrometheus(t, ctx, s, series)
}

// up starts project p detached, after removing what an interrupted earlier
// run left, and removes it again (down -v) when the test ends, with the
// containers' last log lines if it failed.
func up(t *testing.T, ctx context.Context, p *e2e.Project) {
	t.Helper()
	cleanup := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := p.Down(ctx); err != nil {
			t.Errorf("down: %v", err)
		}
	}
	cleanup()
	t.Cleanup(func() {
		if t.Failed() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			t.Logf("logs:\n%s", p.Logs(ctx, 30))
			cancel()
		}
		cleanup()
	})
	if _, err := p.Run(ctx, "up", "-d", "--no-build"); err != nil {
		t.Fatal(err)
	}
}

type clusterInfo = struct {
	Version  uint64
	LeaderID string
	Nodes    []struct{ ID, State string }
}

// waitHealthy waits until every node's container reports healthy.
func waitHealthy(t *testing.T, ctx context.Context, p *e2e.Project, s e2e.Strategy) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var bad []string
		for k := 1; k <= e2e.Nodes; k++ {
			st, err := p.Health(ctx, s.NodeService(k))
			if err != nil {
				st = err.Error()
			}
			if st != "healthy" {
				bad = append(bad, s.NodeService(k)+": "+st)
			}
		}
		if len(bad) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not healthy after 3m: %s", strings.Join(bad, ", "))
		}
		time.Sleep(time.Second)
	}
}

// waitSameMap waits until every node serves the same map, with a leader,
// all ten nodes, a primary for every partition, and passes check. It
// returns the map's version.
func waitSameMap(t *testing.T, ctx context.Context, kv *e2e.KV, check func(*clusterInfo) error) uint64 {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		version, err := sameMap(ctx, kv, check)
		if err == nil {
			return version
		}
		if time.Now().After(deadline) {
			t.Fatalf("the nodes do not serve one map after 2m: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func sameMap(ctx context.Context, kv *e2e.KV, check func(*clusterInfo) error) (uint64, error) {
	var first uint64
	for k := 1; k <= e2e.Nodes; k++ {
		m, err := kv.Map(ctx, k)
		if err != nil {
			return 0, fmt.Errorf("node %d: %w", k, err)
		}
		switch {
		case m.LeaderID == "":
			return 0, fmt.Errorf("node %d: no leader", k)
		case len(m.Nodes) != e2e.Nodes:
			return 0, fmt.Errorf("node %d: %d nodes in the map", k, len(m.Nodes))
		case k > 1 && m.Version != first:
			return 0, fmt.Errorf("node %d: map version %d, node 1: %d", k, m.Version, first)
		}
		first = m.Version
		for _, p := range m.Partitions {
			if p.PrimaryNode == "" {
				return 0, fmt.Errorf("node %d: %s has no primary", k, p.ID)
			}
		}
		if check != nil {
			ci := &clusterInfo{Version: m.Version, LeaderID: m.LeaderID}
			for _, n := range m.Nodes {
				ci.Nodes = append(ci.Nodes, struct{ ID, State string }{n.ID, string(n.State)})
			}
			if err := check(ci); err != nil {
				return 0, fmt.Errorf("node %d: %w", k, err)
			}
		}
	}
	return first, nil
}

// parallel runs fn for every key with 16 workers and fails the test with
// the first errors.
func parallel(t *testing.T, values map[string]string, fn func(key, value string) error) {
	t.Helper()
	work := make(chan string)
	var mu sync.Mutex
	var errs []string
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for key := range work {
				if err := fn(key, values[key]); err != nil {
					mu.Lock()
					errs = append(errs, err.Error())
					mu.Unlock()
				}
			}
		}()
	}
	for key := range values {
		work <- key
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		slices.Sort(errs)
		t.Fatalf("%d of %d keys failed, first: %s", len(errs), len(values), strings.Join(errs[:min(5, len(errs))], "; "))
	}
}

// checkAll reads every key through the cluster and compares its value.
func checkAll(t *testing.T, ctx context.Context, kv *e2e.KV, values map[string]string, when string) {
	t.Helper()
	parallel(t, values, func(key, want string) error {
		ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		got, err := kv.Get(ctx, key)
		switch {
		case err != nil:
			return fmt.Errorf("get %s %s: %w", key, when, err)
		case got != want:
			return fmt.Errorf("get %s %s: %q, want %q", key, when, got, want)
		}
		return nil
	})
}

// checkOwnData reads, from node k's own copy, every key of a partition
// that k owns: its data survived the crash.
func checkOwnData(t *testing.T, ctx context.Context, kv *e2e.KV, k int, values map[string]string) {
	t.Helper()
	m, err := kv.Map(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	id := kv.S.NodeService(k)
	owned := map[string]string{}
	for key, v := range values {
		p := m.Partitions[clusterkit.PartitionIndex(key, m.PartitionCount)]
		if p.PrimaryNode == id || slices.Contains(p.ReplicaNodes, id) {
			owned[key] = v
		}
	}
	if len(owned) == 0 {
		t.Fatalf("%s owns none of the %d keys", id, len(values))
	}
	parallel(t, owned, func(key, want string) error {
		// The node may still be catching up on writes it missed.
		deadline := time.Now().Add(30 * time.Second)
		for {
			got, err := kv.GetLocal(ctx, k, key)
			if err == nil && got == want {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s's own copy of %s: %q, %v; want %q", id, key, got, err, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	t.Logf("%s serves its own copy of the %d keys it owns", id, len(owned))
}

// waitReplicated waits until no kv-async primary has writes its replicas
// lack, so that a killed primary loses nothing acknowledged.
func waitReplicated(t *testing.T, ctx context.Context, kv *e2e.KV) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		pending := 0
		for k := 1; k <= e2e.Nodes; k++ {
			var lag struct {
				Operations int `json:"operations"`
			}
			if err := kv.GetJSON(ctx, k, "/kv/replication", &lag); err != nil {
				t.Fatal(err)
			}
			pending += lag.Operations
		}
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writes still not replicated after 1m", pending)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkPrometheus waits until Prometheus scrapes all ten nodes of s, then
// runs every dashboard expression: each must parse, and those that return
// series are marked in series.
func checkPrometheus(t *testing.T, ctx context.Context, s e2e.Strategy, series map[string]bool) {
	t.Helper()
	prom := &e2e.Prometheus{Addr: "127.0.0.1:" + testPromPort, HC: &http.Client{Timeout: 5 * time.Second}}
	waitScraped(t, ctx, prom, s)
	var libraryEmpty []string
	for _, e := range dashboards.Expressions() {
		r, err := prom.Query(ctx, dashboards.ForPrometheus(e.Expr))
		if err != nil {
			t.Errorf("%s / %s: %v", e.Dashboard, e.Panel, err)
			continue
		}
		if r.Series > 0 {
			series[e.Expr] = true
		} else if strings.Contains(e.Expr, "clusterkit_") {
			libraryEmpty = append(libraryEmpty, e.Panel+": "+e.Expr)
		}
	}
	t.Logf("Prometheus scrapes all %d %s nodes; %d dashboard expressions run", e2e.Nodes, s.Service, len(dashboards.Expressions()))
	if len(libraryEmpty) > 0 {
		t.Logf("library expressions without series in this run:\n%s", strings.Join(libraryEmpty, "\n"))
	}
}

// waitScraped waits until Prometheus has up == 1 for all ten nodes of s.
func waitScraped(t *testing.T, ctx context.Context, prom *e2e.Prometheus, s e2e.Strategy) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		up, err := prom.Up(ctx, s.Service)
		n := 0
		for _, v := range up {
			if v == "1" {
				n++
			}
		}
		if err == nil && n == e2e.Nodes {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus: up == 1 for %d of %d %s nodes after 1m (%v, %v)", n, e2e.Nodes, s.Service, up, err)
		}
		time.Sleep(time.Second)
	}
}
