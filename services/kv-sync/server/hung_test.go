package server

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kit/kittest"
	"clusterkit.dev/services/kv-sync/client"
	"clusterkit.dev/services/kv-sync/internal/batch"
)

// Nodes as processes (kittest.Procs). Such a node stopped with SIGSTOP
// must cost the cluster's reads and writes at most a short, bounded delay.

// nodeBin is the kv-sync command, built once per test run.
var nodeBin kittest.Binary

func TestMain(m *testing.M) { nodeBin.Main(m) }

// procCluster is a cluster of kv-sync processes on 127.0.0.1.
type procCluster struct {
	*kittest.Procs
}

// startProcCluster starts n kv-sync processes (kittest.StartProcs) with
// env added to every node's environment, and waits until every node owns
// and holds its partitions.
func startProcCluster(t *testing.T, n int, env ...string) *procCluster {
	t.Helper()
	return &procCluster{kittest.StartReady(t, nodeBin.Build(t, "kv-sync", ".."), n, 30*time.Second, env...)}
}

// timedOp is one operation of the workload below.
type timedOp struct {
	path       string // "sdk" or "http"
	in         kvInput
	out        kvOutput
	start, end time.Duration // since the workload began
	err        error
}

// The bounds a stopped owner may cost: the longest operation, and the
// longest time in which no write (or no read) succeeded, through either
// path, while the node was stopped. The quorum timeout is 5s.
const (
	maxStalledOp     = time.Second
	maxStalledWindow = time.Second
	// maxLeaderlessWindow bounds the window when the stopped node is the
	// raft leader: the nodes answer until MapLease (1.5s) after they last
	// heard from it, and the new leader is elected after a randomised
	// election timeout of 1 to 2s plus the vote, then the maps are
	// confirmed current: up to about 1s without a success, and a margin.
	maxLeaderlessWindow = 1500 * time.Millisecond
)

// TestSIGSTOPpedOwnerCostsABoundedDelay runs reads and writes through the
// client SDK and through plain HTTP to live nodes while one of three owners
// is stopped with SIGSTOP for 5s (the raft leader in one case, a follower
// in the other), then resumed. Every operation must succeed, none may take
// longer than maxStalledOp, no window without a successful write or read
// may be longer than maxStalledWindow, the history must be linearizable and
// every acknowledged write readable.
func TestSIGSTOPpedOwnerCostsABoundedDelay(t *testing.T) {
	if testing.Short() {
		t.Skip("starts node processes")
	}
	for _, victim := range []string{"leader", "follower"} {
		t.Run(victim, func(t *testing.T) {
			// FSYNC=false: the test measures hung nodes, not the disk of a
			// loaded test machine.
			pc := startProcCluster(t, 3, "FSYNC=false")
			v := pc.Victim(victim == "leader")
			runFault(t, pc, v, "stopped", victim == "leader", func(since func() time.Duration) (from, to time.Duration) {
				from = since()
				pc.Signal(v, syscall.SIGSTOP)
				time.Sleep(5 * time.Second)
				to = since()
				pc.Signal(v, syscall.SIGCONT)
				return from, to
			})
		})
	}
}

// TestRestartingNodeFailsFast kills a follower with SIGKILL and, 4s later,
// restarts it from its data directory while the workload of
// TestSIGSTOPpedOwnerCostsABoundedDelay runs. From the moment its port
// opens, the restarting node answers every request at once, with 503 until
// it is ready; the workload sees the same bounds as with a stopped node.
func TestRestartingNodeFailsFast(t *testing.T) {
	if testing.Short() {
		t.Skip("starts node processes")
	}
	const maxAnswer = 500 * time.Millisecond
	pc := startProcCluster(t, 3, "FSYNC=false")
	v := pc.Victim(false)
	node := pc.Nodes[v].HTTP
	runFault(t, pc, v, "restarting", false, func(since func() time.Duration) (from, to time.Duration) {
		from = since()
		pc.Nodes[v].Kill()
		// Long enough to be declared dead (3s), and for the leader to back
		// off its attempts to reach the node: the restarted node then
		// waits a while for the leader, with an old map.
		time.Sleep(4 * time.Second)
		pc.Start(v)
		// Ask the restarting node for a quorum read, a quorum write and a
		// replica batch until it serves them all.
		hc := &http.Client{Timeout: 10 * time.Second}
		defer hc.CloseIdleConnections()
		// The batch carries the live nodes' map version, as a client's
		// does: a node whose map is older waits for it.
		info, err := pc.ClusterInfo((v + 1) % len(pc.Nodes))
		if err != nil {
			t.Fatal(err)
		}
		readA := batch.AppendEnd(batch.AppendOp(nil, &batch.Op{Kind: batch.OpRead, Key: "a"}), 1)
		var slowest time.Duration
		refused, unready := 0, 0
		deadline := time.Now().Add(20 * time.Second)
		for ok := false; !ok; {
			if time.Now().After(deadline) {
				t.Fatalf("the restarted node is not ready after 20s")
			}
			ok = true
			for _, req := range []func() (*http.Response, error){
				func() (*http.Response, error) { return hc.Get("http://" + node + "/kv/get?key=a") },
				func() (*http.Response, error) {
					return hc.Post("http://"+node+"/kv/set", "application/json", strings.NewReader(`{"key":"r","value":"v"}`))
				},
				func() (*http.Response, error) {
					req, err := http.NewRequest(http.MethodPost, "http://"+node+"/kv/batch", bytes.NewReader(readA))
					if err != nil {
						return nil, err
					}
					req.Header.Set(clusterkit.HeaderMapVersion, strconv.FormatUint(info.Version, 10))
					return hc.Do(req)
				},
			} {
				t0 := time.Now()
				resp, err := req()
				took := time.Since(t0)
				switch {
				case err != nil:
					refused++
					ok = false
					continue
				case resp.StatusCode == http.StatusServiceUnavailable:
					unready++
					ok = false
				case resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound:
					ok = false
				}
				kittest.DrainBody(resp.Body)
				slowest = max(slowest, took)
			}
			time.Sleep(10 * time.Millisecond)
		}
		to = since()
		t.Logf("restarting node: %d requests refused, %d answered 503, the slowest answer took %v",
			refused, unready, slowest.Round(time.Millisecond))
		if slowest > maxAnswer {
			t.Errorf("the restarting node took %v to answer, more than %v", slowest, maxAnswer)
		}
		return from, to
	})
}

// runFault runs the workload, applies fault after 1s, and runs 1s more. The
// fault returns the window it covers, [from, to], in which the bounds
// maxStalledOp and maxStalledWindow are checked; node v is the one it
// strikes (plain HTTP requests go to the others).
//
// With leaderless, the victim is the raft leader: every node stops hearing
// from a leader, and answers 503 from MapLease (1.5s) until a new leader is
// elected and its map is current, so operations may fail then, within
// maxLeaderlessWindow; otherwise every operation must succeed.
func runFault(t *testing.T, pc *procCluster, v int, what string, leaderless bool, fault func(since func() time.Duration) (from, to time.Duration)) {
	const (
		warmUp = time.Second
		after  = time.Second
		pace   = 2 * time.Millisecond
	)
	seeds := pc.Seeds()
	live, _ := pc.Others(v)
	hot := []string{"a", "b", "c", "d", "e", "f", "g", "h"}

	var mu sync.Mutex
	var ops []timedOp
	begin := time.Now()
	since := func() time.Duration { return time.Since(begin) }
	stop := make(chan struct{})
	running := func() bool {
		select {
		case <-stop:
			return false
		default:
			return true
		}
	}
	record := func(op timedOp) {
		mu.Lock()
		ops = append(ops, op)
		mu.Unlock()
	}
	// pick draws an operation: a write of a hot key (which other workers
	// read and overwrite), a read of one, or a write of a key of its own.
	pick := func(worker, n int) kvInput {
		switch r := rand.IntN(10); {
		case r < 4:
			return kvInput{op: kvSet, key: hot[rand.IntN(len(hot))], value: fmt.Sprintf("w%d-%d", worker, n)}
		case r < 8:
			return kvInput{op: kvGet, key: hot[rand.IntN(len(hot))]}
		default:
			return kvInput{op: kvSet, key: fmt.Sprintf("own-%d-%d", worker, n), value: fmt.Sprintf("w%d-%d", worker, n)}
		}
	}

	var wg sync.WaitGroup
	const sdkWorkers, httpWorkers = 4, 4
	for w := range sdkWorkers {
		c, err := client.New(context.Background(), seeds)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		wg.Go(func() {
			for n := 0; running(); n++ {
				op := timedOp{path: "sdk", in: pick(w, n), start: since()}
				if op.in.op == kvSet {
					_, op.err = c.Set(context.Background(), op.in.key, op.in.value)
				} else {
					op.out.value, _, op.err = c.Get(context.Background(), op.in.key)
					if errors.Is(op.err, client.ErrNotFound) {
						op.err = nil
					}
				}
				op.end = since()
				record(op)
				time.Sleep(pace)
			}
		})
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	for w := range httpWorkers {
		node := live[w%len(live)]
		wg.Go(func() {
			for n := 0; running(); n++ {
				op := timedOp{path: "http", in: pick(sdkWorkers+w, n), start: since()}
				op.out.value, op.err = plainOp(hc, node, op.in)
				op.end = since()
				record(op)
				time.Sleep(pace)
			}
		})
	}

	// Stop the workers before their clients close, even if the fault
	// ends the test.
	var halt sync.Once
	defer func() {
		halt.Do(func() { close(stop) })
		wg.Wait()
	}()

	time.Sleep(warmUp)
	from, to := fault(since)
	time.Sleep(after)
	halt.Do(func() { close(stop) })
	wg.Wait()

	// Every operation succeeded, quickly, with no long gap.
	var failed []string
	for _, op := range ops {
		if op.err != nil {
			failed = append(failed, fmt.Sprintf("%s %s at %v: %v", op.path, describe(op.in), op.start.Round(time.Millisecond), op.err))
		}
	}
	if len(failed) > 0 && !leaderless {
		t.Errorf("%d of %d operations failed; first: %s", len(failed), len(ops), strings.Join(failed[:min(5, len(failed))], "; "))
	}
	if leaderless {
		t.Logf("%d of %d operations failed while no leader was heard from", len(failed), len(ops))
	}
	t.Logf("%s %s from %v to %v; %d operations", pc.Nodes[v].ID, what, from.Round(time.Millisecond), to.Round(time.Millisecond), len(ops))
	for _, path := range []string{"sdk", "http"} {
		for _, kind := range []kvOp{kvSet, kvGet} {
			lat, window := stallOf(ops, path, kind, from, to)
			name := map[kvOp]string{kvSet: "writes", kvGet: "reads"}[kind]
			t.Logf("%s %s while %s: longest operation %v, longest window without a success %v",
				path, name, what, lat.Round(time.Millisecond), window.Round(time.Millisecond))
			if lat > maxStalledOp {
				t.Errorf("%s %s: an operation took %v, more than %v", path, name, lat, maxStalledOp)
			}
			bound := maxStalledWindow
			if leaderless {
				bound = maxLeaderlessWindow
			}
			if window > bound {
				t.Errorf("%s %s: no success for %v, more than %v", path, name, window, bound)
			}
		}
	}

	slow := slices.Clone(ops)
	slices.SortFunc(slow, func(a, b timedOp) int { return cmp.Compare(b.end-b.start, a.end-a.start) })
	for _, op := range slow[:min(3, len(slow))] {
		t.Logf("slow: %s %s from %v, %v", op.path, describe(op.in), op.start.Round(time.Millisecond), (op.end - op.start).Round(time.Millisecond))
	}

	// The history is linearizable. A failed write may or may not have
	// taken effect: it is still running at the end. A failed read observed
	// nothing.
	var history []porcupine.Operation
	for i, op := range ops {
		po := porcupine.Operation{ClientId: i, Input: op.in, Call: int64(op.start), Output: op.out, Return: int64(op.end)}
		switch {
		case op.err != nil && op.in.op == kvGet:
			continue
		case op.err != nil:
			po.Return = math.MaxInt64
		}
		history = append(history, po)
	}
	checkLinearizable(t, dropUnseenFailedWrites(history))

	// Every acknowledged write is readable once the node is back.
	c, err := client.New(context.Background(), seeds)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	unread := 0
	for _, op := range ops {
		if op.err != nil || op.in.op != kvSet || !strings.HasPrefix(op.in.key, "own-") {
			continue
		}
		if got, _, err := c.Get(context.Background(), op.in.key); err != nil || got != op.in.value {
			unread++
			if unread <= 5 {
				t.Errorf("acknowledged %s: read %q, %v", describe(op.in), got, err)
			}
		}
	}
	if unread > 0 {
		t.Errorf("%d acknowledged writes not read back", unread)
	}
}

// stallOf returns, for the successful operations of path and kind, the
// longest that overlapped [from, to] and the longest window within
// [from, to] in which none returned.
func stallOf(ops []timedOp, path string, kind kvOp, from, to time.Duration) (longest, window time.Duration) {
	var ends []time.Duration
	for _, op := range ops {
		if op.path != path || op.in.op != kind {
			continue
		}
		if op.start < to && op.end > from {
			longest = max(longest, op.end-op.start)
		}
		if op.err == nil && op.end >= from && op.end <= to {
			ends = append(ends, op.end)
		}
	}
	slices.Sort(ends)
	last := from
	for _, e := range append(ends, to) {
		window = max(window, e-last)
		last = e
	}
	return longest, window
}

// plainOp runs in through node's HTTP API, as curl would: the node runs the
// quorum.
func plainOp(hc *http.Client, node string, in kvInput) (string, error) {
	var resp *http.Response
	var err error
	if in.op == kvSet {
		body, _ := json.Marshal(map[string]string{"key": in.key, "value": in.value})
		resp, err = hc.Post("http://"+node+"/kv/set", "application/json", bytes.NewReader(body))
	} else {
		resp, err = hc.Get("http://" + node + "/kv/get?key=" + url.QueryEscape(in.key))
	}
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	switch {
	case in.op == kvGet && resp.StatusCode == http.StatusNotFound:
		return "", nil
	case resp.StatusCode != http.StatusOK:
		return "", fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
	}
	var a struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return "", err
	}
	return a.Value, nil
}

func describe(in kvInput) string {
	if in.op == kvSet {
		return fmt.Sprintf("set(%s, %s)", in.key, in.value)
	}
	return fmt.Sprintf("get(%s)", in.key)
}
