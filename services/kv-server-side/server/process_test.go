package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kit/kittest"
)

// Nodes as processes (kittest.Procs).

// nodeBin is the kv-server-side command, built once per test run.
var nodeBin kittest.Binary

func TestMain(m *testing.M) { nodeBin.Main(m) }

// procCluster is a cluster of kv-server-side processes on 127.0.0.1.
type procCluster struct {
	*kittest.Procs
}

// startProcCluster starts n kv-server-side processes (kittest.StartProcs)
// with env added to every node's environment, and waits until every node
// owns and holds its partitions.
func startProcCluster(t *testing.T, n int, env ...string) *procCluster {
	t.Helper()
	return &procCluster{kittest.StartReady(t, nodeBin.Build(t, "kv-server-side", ".."), n, 60*time.Second, env...)}
}

// primaries returns the primary of every partition, as node i sees it.
func (pc *procCluster) primaries(i int) (map[int]string, int) {
	pc.T.Helper()
	info, err := pc.ClusterInfo(i)
	if err != nil {
		pc.T.Fatal(err)
	}
	m := map[int]string{}
	for _, p := range info.Partitions {
		m[p.Index] = p.PrimaryNode
	}
	return m, info.PartitionCount
}

// set writes key=value through node and returns the HTTP status (0 when
// no answer came) and the body.
func (pc *procCluster) set(hc *http.Client, node, key, value string) (int, string) {
	body, _ := json.Marshal(map[string]string{"key": key, "value": value})
	resp, err := hc.Post("http://"+node+"/kv/set", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(bytes.TrimSpace(b))
}

// get reads key through node and returns the HTTP status (0 when no answer
// came) and the value.
func (pc *procCluster) get(hc *http.Client, node, key string) (int, string) {
	resp, err := hc.Get("http://" + node + "/kv/get?key=" + url.QueryEscape(key))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, string(bytes.TrimSpace(b))
	}
	var a getAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		return 0, err.Error()
	}
	return resp.StatusCode, a.Value
}

// timedOp is one request of a workload.
type timedOp struct {
	write      bool
	key, value string
	node       string
	// victimPrimary is set when the key's primary was the struck node
	// when the workload began.
	victimPrimary bool
	status        int
	body          string
	start, end    time.Duration // since the workload began
}

func (op timedOp) ok() bool { return op.status == http.StatusOK }

func (op timedOp) took() time.Duration { return op.end - op.start }

// workload runs writes of unique keys and reads of keys written before it
// began through the nodes live, until stop is closed. Each worker waits
// for its answer before its next request.
type workload struct {
	pc    *procCluster
	begin time.Time
	stop  chan struct{}
	wg    sync.WaitGroup

	mu  sync.Mutex
	ops []timedOp
}

// runWorkload starts writers and readers through live. victimPrimary
// tells whether a key's primary was the struck node; seeded are keys
// already written, with their values, which the readers read.
func runWorkload(pc *procCluster, live []string, victimPrimary func(key string) bool, seeded map[string]string) *workload {
	w := &workload{pc: pc, begin: time.Now(), stop: make(chan struct{})}
	var seededKeys []string
	for k := range seeded {
		seededKeys = append(seededKeys, k)
	}
	slices.Sort(seededKeys)
	const writers, readers = 6, 2
	for c := range writers + readers {
		node := live[c%len(live)]
		hc := &http.Client{Timeout: 10 * time.Second}
		w.wg.Go(func() {
			defer hc.CloseIdleConnections()
			for n := 0; ; n++ {
				select {
				case <-w.stop:
					return
				default:
				}
				op := timedOp{node: node, start: time.Since(w.begin)}
				if c < writers {
					op.write, op.key, op.value = true, fmt.Sprintf("w%d-%d", c, n), fmt.Sprintf("v%d", n)
					op.status, op.body = pc.set(hc, node, op.key, op.value)
				} else {
					op.key = seededKeys[n%len(seededKeys)]
					op.status, op.body = pc.get(hc, node, op.key)
					if op.ok() && op.body != seeded[op.key] {
						op.status, op.body = -1, fmt.Sprintf("read %q, want %q", op.body, seeded[op.key])
					}
				}
				op.victimPrimary = victimPrimary(op.key)
				op.end = time.Since(w.begin)
				w.mu.Lock()
				w.ops = append(w.ops, op)
				w.mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	return w
}

func (w *workload) since() time.Duration { return time.Since(w.begin) }

// finish stops the workload and returns its operations.
func (w *workload) finish() []timedOp {
	close(w.stop)
	w.wg.Wait()
	return w.ops
}

// longestGap returns the longest time within [from, to] in which no
// operation that match accepts succeeded.
func longestGap(ops []timedOp, from, to time.Duration, match func(timedOp) bool) time.Duration {
	var ends []time.Duration
	for _, op := range ops {
		if op.ok() && match(op) && op.end >= from && op.end <= to {
			ends = append(ends, op.end)
		}
	}
	slices.Sort(ends)
	var gap time.Duration
	last := from
	for _, e := range append(ends, to) {
		gap = max(gap, e-last)
		last = e
	}
	return gap
}

// percentile returns the q-quantile of d (sorted in place).
func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(q*float64(len(d))))]
}

// checkAcknowledged reads every acknowledged write of ops through each
// node of via and fails the test for each that does not return its value.
func (pc *procCluster) checkAcknowledged(ops []timedOp, via []int, when string) int {
	pc.T.Helper()
	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	// The reads are independent: a few at a time, so that ten thousand
	// writes are checked in seconds.
	work := make(chan timedOp)
	var lost atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for op := range work {
				for _, i := range via {
					status, value := pc.get(hc, pc.Nodes[i].HTTP, op.key)
					if status != http.StatusOK || value != op.value {
						if lost.Add(1) <= 5 {
							pc.T.Errorf("%s: acknowledged write %s=%s reads %d %q through %s", when, op.key, op.value, status, value, pc.Nodes[i].ID)
						}
					}
				}
			}
		})
	}
	acked := 0
	for _, op := range ops {
		if op.write && op.ok() {
			acked++
			work <- op
		}
	}
	close(work)
	wg.Wait()
	if n := lost.Load(); n > 0 {
		pc.T.Errorf("%s: %d reads of %d acknowledged writes missed them", when, n, acked)
	}
	return acked
}

// seed writes n keys through node 0 and returns them.
func (pc *procCluster) seed(n int) map[string]string {
	pc.T.Helper()
	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	seeded := map[string]string{}
	for i := range n {
		k, v := fmt.Sprintf("seed-%d", i), fmt.Sprintf("s%d", i)
		if status, body := pc.set(hc, pc.Nodes[0].HTTP, k, v); status != http.StatusOK {
			pc.T.Fatalf("seed %s: %d %s", k, status, body)
		}
		seeded[k] = v
	}
	return seeded
}

// The bounds a stopped owner may cost. Before these changes, a write
// waited REPLICATION_TIMEOUT (2s) for a paused replica and up to
// FORWARD_TIMEOUT (5s) for a paused primary.
const (
	// maxLiveWriteP99 bounds the 99th percentile of the latency of
	// writes whose primary is live, from maxMarking after the pause on.
	maxLiveWriteP99 = 500 * time.Millisecond
	// maxMarking is the time the nodes get to mark the paused node:
	// REPLICA_LAG_TIMEOUT and FORWARD_PROBE_TIMEOUT (300ms each) twice.
	maxMarking = 1200 * time.Millisecond
	// maxFailFast bounds a failed write or any read to a key whose primary
	// is paused, from maxMarking after the pause on.
	maxFailFast = time.Second
	// maxLiveGap bounds the longest window without an acknowledged write
	// of a key with a live primary while the node is paused. With the raft
	// leader paused, primaries refuse from PrimaryLease (1.5s) until a new
	// leader is elected (HeartbeatTimeout, 1s, to twice that) and their maps
	// are current: up to about a second.
	maxLiveGap = 1500 * time.Millisecond
)

// TestSIGSTOPpedNodeCostsABoundedDelay stops one of three nodes with
// SIGSTOP for 8s, then resumes it, then kills it with SIGKILL, while clients write unique
// keys and read older keys through the two live nodes. With 3 nodes and 3
// replicas, the paused node is a replica of the partitions of the other
// two and the primary of its own. Writes of the first kind keep being
// acknowledged with a bounded latency; writes of the second fail fast
// (503) until a replica is promoted (the stopped leader's) or the node
// resumes (the stopped follower's), and then succeed; reads keep working;
// no acknowledged write is lost, after SIGCONT nor after the SIGKILL.
func TestSIGSTOPpedNodeCostsABoundedDelay(t *testing.T) {
	if testing.Short() {
		t.Skip("starts node processes")
	}
	for _, victim := range []string{"follower", "leader"} {
		t.Run(victim, func(t *testing.T) {
			// FSYNC=false: the test measures hung nodes, not the disk of a
			// loaded test machine.
			pc := startProcCluster(t, 3, "FSYNC=false")
			v := pc.Victim(victim == "leader")
			live, liveIdx := pc.Others(v)
			seeded := pc.seed(64)
			prim, count := pc.primaries(liveIdx[0])
			victimID := pc.Nodes[v].ID
			victimPrimary := func(key string) bool { return prim[clusterkit.PartitionIndex(key, count)] == victimID }

			w := runWorkload(pc, live, victimPrimary, seeded)
			time.Sleep(time.Second)
			stopped := w.since()
			pc.Signal(v, syscall.SIGSTOP)
			// Long enough for ClusterKit to declare a stopped raft leader
			// dead and promote replicas (a stopped follower is not
			// declared dead within it: it stays primary until SIGCONT).
			time.Sleep(8 * time.Second)
			resumed := w.since()
			pc.Signal(v, syscall.SIGCONT)
			time.Sleep(2 * time.Second)
			ops := w.finish()

			settled := stopped + maxMarking
			var liveLat, otherFail []time.Duration
			var liveFailed, victimOK, victimFailed, reads, readsFailed int
			var slowestRead, firstVictimOK time.Duration
			var failures []string
			var lastVictimFailure string
			victimOKAfter := 0
			for _, op := range ops {
				if op.write && op.victimPrimary && op.ok() && op.start > resumed {
					victimOKAfter++
				}
				if op.start < stopped || op.start > resumed {
					continue
				}
				switch {
				case !op.write:
					reads++
					if !op.ok() {
						readsFailed++
						failures = append(failures, fmt.Sprintf("read %s at %v: %d %s", op.key, op.start.Round(time.Millisecond), op.status, op.body))
					}
					if op.start >= settled {
						slowestRead = max(slowestRead, op.took())
					}
				case !op.victimPrimary:
					if op.start >= settled {
						liveLat = append(liveLat, op.took())
					}
					if !op.ok() {
						liveFailed++
						failures = append(failures, fmt.Sprintf("write %s at %v: %d %s", op.key, op.start.Round(time.Millisecond), op.status, op.body))
					}
				case op.ok():
					victimOK++
					if firstVictimOK == 0 {
						firstVictimOK = op.end
					}
				default:
					victimFailed++
					lastVictimFailure = fmt.Sprintf("%d %s", op.status, op.body)
					if op.start >= settled {
						otherFail = append(otherFail, op.took())
					}
				}
			}
			liveWrites := len(liveLat)
			p99, maxLive := percentile(liveLat, 0.99), percentile(liveLat, 1)
			maxFail := percentile(otherFail, 1)
			gapLive := longestGap(ops, stopped, resumed, func(op timedOp) bool { return op.write && !op.victimPrimary })
			gapAll := longestGap(ops, stopped, resumed, func(op timedOp) bool { return op.write })
			t.Logf("%s (%s) stopped from %v to %v", victimID, victim, stopped.Round(time.Millisecond), resumed.Round(time.Millisecond))
			t.Logf("writes with a live primary after %v: %d, p99 %v, max %v, %d failed while stopped",
				maxMarking, liveWrites, p99.Round(time.Millisecond), maxLive.Round(time.Millisecond), liveFailed)
			t.Logf("writes with the stopped primary: %d failed (slowest failure after %v: %v; the last: %s), %d acknowledged after a promotion while stopped (the first at %v), %d after SIGCONT",
				victimFailed, maxMarking, maxFail.Round(time.Millisecond), lastVictimFailure, victimOK, firstVictimOK.Round(time.Millisecond), victimOKAfter)
			t.Logf("reads: %d, %d failed, slowest after %v: %v", reads, readsFailed, maxMarking, slowestRead.Round(time.Millisecond))
			t.Logf("longest window without an acknowledged write while stopped: %v cluster-wide, %v for keys with a live primary",
				gapAll.Round(time.Millisecond), gapLive.Round(time.Millisecond))

			if liveWrites == 0 {
				t.Fatal("no write with a live primary was made while the node was stopped")
			}
			if p99 > maxLiveWriteP99 {
				t.Errorf("writes with a live primary: p99 %v, more than %v", p99, maxLiveWriteP99)
			}
			if gapLive > maxLiveGap {
				t.Errorf("no write with a live primary acknowledged for %v, more than %v", gapLive, maxLiveGap)
			}
			if maxFail > maxFailFast {
				t.Errorf("a failed write to the stopped primary took %v, more than %v", maxFail, maxFailFast)
			}
			if slowestRead > maxFailFast {
				t.Errorf("a read took %v, more than %v", slowestRead, maxFailFast)
			}
			if victim == "leader" && victimOK == 0 {
				t.Errorf("no write to the stopped leader's partitions succeeded after the promotion")
			}
			if victimOKAfter == 0 {
				t.Errorf("no write to the stopped node's partitions succeeded after SIGCONT")
			}
			// With the raft leader stopped, every node stops hearing from a
			// leader: primaries refuse (and fallback reads with them) from
			// PrimaryLease on until a new leader is elected and their maps
			// are current; the window bound above holds them to it.
			var other []string
			for _, f := range failures {
				if !strings.Contains(f, "has not heard from the raft leader") {
					other = append(other, f)
				}
			}
			refused := len(failures) - len(other)
			t.Logf("%d operations refused while no leader was heard from", refused)
			if victim == "follower" && refused > 0 {
				t.Errorf("%d operations refused for want of a leader while a follower was stopped", refused)
			}
			if len(other) > 0 {
				t.Errorf("%d of %d writes with a live primary and of %d reads failed while the node was stopped, not for want of a leader; first: %s",
					len(other), liveFailed, readsFailed, strings.Join(other[:min(5, len(other))], "; "))
			}

			acked := pc.checkAcknowledged(ops, liveIdx, "after SIGCONT")
			pc.Nodes[v].Kill()
			// Any node forwards a read to the key's primary: one live node
			// reads every partition, those failed over included.
			pc.checkAcknowledged(ops, liveIdx[1:], "after SIGKILL of the resumed node")
			t.Logf("%d acknowledged writes read back through both live nodes after SIGCONT, and through %s after SIGKILL",
				acked, pc.Nodes[liveIdx[1]].ID)
		})
	}
}

// TestRestartingNodeFailsFast kills a node with SIGKILL while clients
// write through the other two, and 4s later restarts it from its data
// directory. From the moment its port opens, the restarting node answers
// every request at once, 503 until it is ready; then it serves reads of
// every write acknowledged meanwhile.
func TestRestartingNodeFailsFast(t *testing.T) {
	if testing.Short() {
		t.Skip("starts node processes")
	}
	const maxAnswer = 500 * time.Millisecond
	pc := startProcCluster(t, 3, "FSYNC=false")
	v := pc.Victim(false)
	live, _ := pc.Others(v)
	seeded := pc.seed(16)
	w := runWorkload(pc, live, func(string) bool { return false }, seeded)
	time.Sleep(time.Second)
	killed := w.since()
	pc.Nodes[v].Kill()
	// Long enough to be declared dead and lose its primaries.
	time.Sleep(4 * time.Second)
	restarted := w.since()
	pc.Start(v)

	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	node := pc.Nodes[v].HTTP
	var slowest time.Duration
	refused, unready, answered := 0, 0, 0
	deadline := time.Now().Add(30 * time.Second)
	for ok := false; !ok; {
		if time.Now().After(deadline) {
			t.Fatalf("the restarted node does not serve after 30s")
		}
		ok = true
		for _, req := range []func() int{
			func() int { s, _ := pc.get(hc, node, "seed-1"); return s },
			func() int { s, _ := pc.set(hc, node, "restart-probe", "v"); return s },
		} {
			t0 := time.Now()
			status := req()
			took := time.Since(t0)
			switch status {
			case 0:
				refused++
				ok = false
				continue
			case http.StatusServiceUnavailable:
				unready++
				ok = false
			case http.StatusOK:
				answered++
			default:
				ok = false
			}
			slowest = max(slowest, took)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ready := w.since()
	time.Sleep(time.Second)
	ops := w.finish()

	gap := longestGap(ops, killed, ready, func(op timedOp) bool { return op.write })
	failed := 0
	for _, op := range ops {
		if op.write && !op.ok() {
			failed++
		}
	}
	t.Logf("killed at %v, restarted at %v, serving at %v: %d requests refused, %d answered 503, the slowest answer took %v",
		killed.Round(time.Millisecond), restarted.Round(time.Millisecond), ready.Round(time.Millisecond), refused, unready, slowest.Round(time.Millisecond))
	t.Logf("workload: %d operations, %d writes failed, longest window without an acknowledged write from the kill to serving: %v",
		len(ops), failed, gap.Round(time.Millisecond))
	if slowest > maxAnswer {
		t.Errorf("the restarting node took %v to answer, more than %v", slowest, maxAnswer)
	}
	if unready == 0 && refused == 0 {
		t.Errorf("the restarting node served at once: the test did not see it start")
	}
	pc.WaitReady(pc.All(), 60*time.Second)
	pc.checkAcknowledged(ops, pc.All(), "after the restart")
}

// TestKilledLeaderLosesNoAcknowledgedWrite carries the acknowledged-write
// guarantee with a real crash: while clients write unique keys through
// every node, the raft leader's process is killed with SIGKILL (no clean
// stop: what its store had not applied is in its log only), the two
// others go on, and the killed node is restarted from its data directory.
// Every write acknowledged at any time is read back through each
// surviving node right after the kill (once the promotions are done) and
// through every node after the restart. The kill costs writes a bounded
// window: the promotion of replicas and a new raft leader.
func TestKilledLeaderLosesNoAcknowledgedWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts node processes")
	}
	const maxGap = 10 * time.Second
	pc := startProcCluster(t, 3)
	v := pc.Leader(0)
	var liveIdx []int
	var nodes []string
	for i, p := range pc.Nodes {
		nodes = append(nodes, p.HTTP)
		if i != v {
			liveIdx = append(liveIdx, i)
		}
	}
	seeded := pc.seed(16)
	w := runWorkload(pc, nodes, func(string) bool { return false }, seeded)
	time.Sleep(2 * time.Second)
	killed := w.since()
	pc.Nodes[v].Kill()
	time.Sleep(8 * time.Second)
	ops := w.finish()
	end := w.since()

	acked, failed := 0, 0
	for _, op := range ops {
		switch {
		case op.write && op.ok():
			acked++
		case op.write:
			failed++
		}
	}
	gap := longestGap(ops, killed, end, func(op timedOp) bool { return op.write && op.node != pc.Nodes[v].HTTP })
	t.Logf("leader %s killed at %v: %d writes acknowledged, %d failed; longest window without an acknowledged write after the kill: %v",
		pc.Nodes[v].ID, killed.Round(time.Millisecond), acked, failed, gap.Round(time.Millisecond))
	if gap > maxGap {
		t.Errorf("no write acknowledged for %v after the kill, more than %v", gap, maxGap)
	}
	if acked == 0 {
		t.Fatal("no write acknowledged")
	}
	pc.checkAcknowledged(ops, liveIdx, "after the SIGKILL of the leader")

	pc.Start(v)
	pc.WaitReady(pc.All(), 60*time.Second)
	pc.checkAcknowledged(ops, pc.All(), "after the restart")
}
