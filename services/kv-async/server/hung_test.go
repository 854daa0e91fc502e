package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	ckclient "clusterkit.dev/clusterkit/client"
	"clusterkit.dev/services/kv-async/client"
)

// Bounds of the client with its default options: a request to one node
// gets 1s; a write queued behind a batch that times out waits for it.
const (
	callTimeout   = time.Second
	maxFailedCall = 2*callTimeout + 500*time.Millisecond
)

// nonLeader returns a node that is not the raft leader.
func nonLeader(pc *procCluster) int {
	return (pc.Leader(0) + 1) % len(pc.Nodes)
}

// keysOf returns n keys whose primary in c's map satisfies want.
func keysOf(t *testing.T, c *client.Client, n int, want func(primary string) bool) []string {
	t.Helper()
	var keys []string
	for i := 0; len(keys) < n; i++ {
		k := fmt.Sprintf("key-%d", i)
		r, err := c.SDK().Route(k)
		if err != nil {
			t.Fatal(err)
		}
		if want(r.Primary.ID) {
			keys = append(keys, k)
		}
	}
	return keys
}

// writeLoad writes keys in turn from several goroutines until end, and
// records the last value acknowledged per key, the failed writes and the
// latencies of all writes. len(keys) must be a multiple of the workers.
type writeLoad struct {
	mu        sync.Mutex
	acked     map[string]string
	failures  []error
	latencies []time.Duration
	wg        sync.WaitGroup
	stop      chan struct{}
}

func startWrites(c *client.Client, keys []string, workers int) *writeLoad {
	w := &writeLoad{acked: map[string]string{}, stop: make(chan struct{})}
	for g := range workers {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-w.stop:
					return
				default:
				}
				k := keys[(i*workers+g)%len(keys)]
				v := fmt.Sprintf("%d-%d", g, i)
				start := time.Now()
				err := c.Set(context.Background(), k, v)
				d := time.Since(start)
				w.mu.Lock()
				w.latencies = append(w.latencies, d)
				if err != nil {
					w.failures = append(w.failures, err)
				} else {
					// Each key has one writer (keys are split between the
					// workers by index), so its last value is well defined.
					w.acked[k] = v
				}
				w.mu.Unlock()
			}
		}()
	}
	return w
}

func (w *writeLoad) end() {
	close(w.stop)
	w.wg.Wait()
}

// quantile returns the q quantile of ds.
func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// A primary stopped with SIGSTOP: the client's reads of its keys go to the
// replicas within the call timeout, its writes fail within twice the call
// timeout and succeed again once the cluster has failed the partition
// over; writes to the other primaries go on with no failure and no wait.
func TestSIGSTOPpedPrimaryFailsWritesFastThenFailsOver(t *testing.T) {
	if testing.Short() {
		t.Skip("starts node processes")
	}
	pc := startProcCluster(t, 3)
	c, err := client.New(context.Background(), pc.Seeds())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	vi := nonLeader(pc)
	victim := pc.Nodes[vi].ID
	key := keysOf(t, c, 1, func(p string) bool { return p == victim })[0]
	if err := c.Set(context.Background(), key, "before"); err != nil {
		t.Fatal(err)
	}
	pc.replicated(vi)
	// Writes to the other primaries: each worker owns its keys.
	others := keysOf(t, c, 32, func(p string) bool { return p != victim })
	load := startWrites(c, others, 4)

	pc.Signal(vi, syscall.SIGSTOP)
	stopped := time.Now()
	defer pc.Signal(vi, syscall.SIGCONT)

	start := time.Now()
	v, err := c.Get(context.Background(), key)
	took := time.Since(start)
	if err != nil || v != "before" {
		t.Fatalf("Get with the primary stopped: %q, %v; want the replicated value", v, err)
	}
	if took > callTimeout+500*time.Millisecond {
		t.Fatalf("Get with the primary stopped took %v, want at most the %v call timeout and some slack", took, callTimeout)
	}
	t.Logf("Get with the primary stopped, from a replica: %v", took)

	var failed []time.Duration
	var last string
	var failover time.Duration // when a live node's map first moved the key
	live := (vi + 1) % len(pc.Nodes)
	count := c.SDK().Topology().PartitionCount
	for i := 0; ; i++ {
		if failover == 0 {
			var info clusterkit.ClusterInfo
			if err := pc.getJSON(live, "/cluster", &info); err == nil &&
				info.Partitions[clusterkit.PartitionIndex(key, count)].PrimaryNode != victim {
				failover = time.Since(stopped)
			}
		}
		last = fmt.Sprintf("after-%d", i)
		start := time.Now()
		err := c.Set(context.Background(), key, last)
		d := time.Since(start)
		if err == nil {
			break
		}
		failed = append(failed, d)
		if d > maxFailedCall {
			t.Fatalf("a write to the stopped primary failed after %v, want at most %v: %v", d, maxFailedCall, err)
		}
		if !errors.Is(err, context.DeadlineExceeded) && ckclient.StatusCode(err) == 0 {
			t.Logf("write failed with: %v", err)
		}
		if time.Since(stopped) > 30*time.Second {
			t.Fatalf("no write succeeded 30s after the primary stopped: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	recovered := time.Since(stopped)
	load.end()
	t.Logf("writes to the stopped primary: %d failed, the slowest in %v; failover in %s's map %v after SIGSTOP, the first write that succeeded %v after",
		len(failed), slices.Max(append(failed, 0)), pc.Nodes[live].ID, failover, recovered)
	if len(failed) == 0 {
		t.Fatal("no write failed while the primary was stopped: the test proves nothing")
	}
	r, err := c.SDK().Route(key)
	if err != nil || r.Primary.ID == victim {
		t.Fatalf("after failover %q routes to %v (%v), want a live node", key, r.Primary, err)
	}
	if v, err := c.Get(context.Background(), key); err != nil || v != last {
		t.Fatalf("Get after failover: %q, %v; want %q", v, err, last)
	}

	t.Logf("writes to live primaries meanwhile: %d, p50 %v, p99 %v, max %v, %d failed",
		len(load.latencies), quantile(load.latencies, 0.5), quantile(load.latencies, 0.99), slices.Max(load.latencies), len(load.failures))
	if len(load.failures) > 0 {
		t.Fatalf("%d writes to live primaries failed while another node was stopped; first: %v", len(load.failures), load.failures[0])
	}
	if m := slices.Max(load.latencies); m > callTimeout {
		t.Fatalf("a write to a live primary took %v while another node was stopped, want at most %v", m, callTimeout)
	}
}

// A replica stopped with SIGSTOP for 6s: the primaries' writes go on with
// no failure and no wait, the live replica keeps up (its lag stays under
// a second throughout), and once resumed the stopped node catches up with
// every acknowledged write.
func TestSIGSTOPpedReplicaDoesNotHoldThePrimaries(t *testing.T) {
	if testing.Short() {
		t.Skip("starts node processes")
	}
	pc := startProcCluster(t, 3)
	c, err := client.New(context.Background(), pc.Seeds())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	vi := nonLeader(pc)
	victim := pc.Nodes[vi].ID
	keys := keysOf(t, c, 32, func(p string) bool { return p != victim })
	load := startWrites(c, keys, 4)
	time.Sleep(time.Second)

	pc.Signal(vi, syscall.SIGSTOP)
	stopped := time.Now()
	var worstLive float64
	polls := 0
	for time.Since(stopped) < 6*time.Second {
		for i := range pc.Nodes {
			if i == vi {
				continue
			}
			var st ReplicationStatus
			if err := pc.getJSON(i, "/kv/replication", &st); err != nil {
				t.Fatal(err)
			}
			polls++
			for _, p := range st.Peers {
				if p.Peer != victim {
					worstLive = max(worstLive, p.Seconds)
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	pc.Signal(vi, syscall.SIGCONT)
	load.end()
	t.Logf("writes with a replica stopped for 6s: %d, p50 %v, p99 %v, max %v, %d failed; worst lag of a live replica %.3fs over %d polls",
		len(load.latencies), quantile(load.latencies, 0.5), quantile(load.latencies, 0.99), slices.Max(load.latencies), len(load.failures), worstLive, polls)
	if len(load.failures) > 0 {
		t.Fatalf("%d writes failed while a replica was stopped; first: %v", len(load.failures), load.failures[0])
	}
	if m := slices.Max(load.latencies); m > callTimeout {
		t.Fatalf("a write took %v while a replica was stopped, want at most %v", m, callTimeout)
	}
	if worstLive >= 1 {
		t.Fatalf("a live replica lagged %.3fs behind while another was stopped, want under 1s", worstLive)
	}

	// Resumed, the node is a replica again and holds every acknowledged
	// write.
	pc.waitReady()
	for i := range pc.Nodes {
		pc.replicated(i)
	}
	node := clusterkit.Node{ID: victim, IP: pc.Nodes[vi].HTTP}
	for k, want := range load.acked {
		if got, err := c.GetFrom(context.Background(), node, k); err != nil || got != want {
			t.Fatalf("%s after resuming: %q = %q, %v; want %q", victim, k, got, err, want)
		}
	}
}

// Both replicas of a primary stopped with SIGSTOP (and with them the raft
// quorum, so the map cannot change): the primary takes writes for at most
// MaxReplicationLag (1s) after its oldest write no replica has, then
// refuses them with 503 at once, which bounds what its death could lose;
// once the replicas are resumed it takes writes again.
func TestPrimaryRefusesWritesBeyondTheReplicationLagBound(t *testing.T) {
	if testing.Short() {
		t.Skip("starts node processes")
	}
	pc := startProcCluster(t, 3)
	c, err := client.New(context.Background(), pc.Seeds())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pi := nonLeader(pc)
	primary := pc.Nodes[pi].ID
	keys := keysOf(t, c, 16, func(p string) bool { return p == primary })
	if err := c.Set(context.Background(), keys[0], "warm"); err != nil {
		t.Fatal(err)
	}
	pc.replicated(pi)

	for i := range pc.Nodes {
		if i != pi {
			pc.Signal(i, syscall.SIGSTOP)
		}
	}
	stopped := time.Now()
	var lastAck time.Duration
	acked, refused := 0, 0
	var slowestRefusal time.Duration
	for i := 0; time.Since(stopped) < 3*time.Second; i++ {
		start := time.Now()
		err := c.Set(context.Background(), keys[i%len(keys)], fmt.Sprint(i))
		d := time.Since(start)
		switch {
		case err == nil:
			acked++
			lastAck = time.Since(stopped)
		case ckclient.StatusCode(err) == http.StatusServiceUnavailable:
			refused++
			slowestRefusal = max(slowestRefusal, d)
		default:
			t.Fatalf("write %d, %v after the replicas stopped: %v, want success or 503", i, time.Since(stopped), err)
		}
	}
	t.Logf("replicas stopped: %d writes acknowledged, the last %v after; %d refused, the slowest refusal in %v",
		acked, lastAck, refused, slowestRefusal)
	if bound := time.Second + 300*time.Millisecond; lastAck > bound {
		t.Fatalf("the primary acknowledged a write %v after its replicas stopped, want at most %v", lastAck, bound)
	}
	if acked == 0 || refused == 0 {
		t.Fatalf("%d writes acknowledged, %d refused: want both", acked, refused)
	}
	if slowestRefusal > callTimeout/2 {
		t.Fatalf("a refused write took %v, want an answer at once, well within the %v call timeout", slowestRefusal, callTimeout)
	}

	for i := range pc.Nodes {
		if i != pi {
			pc.Signal(i, syscall.SIGCONT)
		}
	}
	resumed := time.Now()
	for {
		err := c.Set(context.Background(), keys[0], "again")
		if err == nil {
			break
		}
		if time.Since(resumed) > 20*time.Second {
			t.Fatalf("writes still refused 20s after the replicas resumed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("writes taken again %v after the replicas resumed", time.Since(resumed))
}
