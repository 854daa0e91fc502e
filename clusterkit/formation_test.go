package clusterkit_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
)

// BenchmarkFormation starts n nodes at once, all given the same join list,
// and reports the seconds from the start until every node serves the same
// map in which all n own partitions.
//
//	go test -run '^$' -bench Formation -benchtime 5x .
func BenchmarkFormation(b *testing.B) {
	for _, n := range []int{3, 10} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			var total, worst time.Duration
			for i := 0; i < b.N; i++ {
				c := cktest.NewStopped(b, n)
				start := time.Now()
				c.StartAll()
				c.Eventually("convergence", func() error { return c.Converged(true) })
				d := time.Since(start)
				total += d
				worst = max(worst, d)
				c.StopAll()
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/converge")
			b.ReportMetric(worst.Seconds(), "s/worst")
		})
	}
}

// fetchJSON decodes the 200 answer of GET http://addr+path into out.
func fetchJSON(addr, path string, out any) error {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", path, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// waitingNode is an in-process node whose Start waits to form a cluster.
type waitingNode struct {
	opts clusterkit.Options
	ck   *clusterkit.ClusterKit
	done chan error
}

func startWaiting(t *testing.T, opts clusterkit.Options) *waitingNode {
	t.Helper()
	ck, err := clusterkit.NewClusterKit(opts)
	if err != nil {
		t.Fatal(err)
	}
	w := &waitingNode{opts: opts, ck: ck, done: make(chan error, 1)}
	go func() { w.done <- ck.Start() }()
	return w
}

// stop stops the node and checks that its Start, still waiting, returns.
func (w *waitingNode) stop(t *testing.T) {
	t.Helper()
	if err := w.ck.Stop(); err != nil {
		t.Errorf("stop %s: %v", w.opts.NodeID, err)
	}
	select {
	case err := <-w.done:
		if err == nil {
			t.Errorf("%s: Start returned nil: it formed a cluster", w.opts.NodeID)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: Start still waiting 5s after Stop", w.opts.NodeID)
	}
}

// fakeFounder answers GET /cluster/formation as a waiting node would; the
// test sends its promise requests itself.
type fakeFounder struct {
	id, addr string
	srv      *http.Server
}

func listenFake(t *testing.T, id, addr string) *fakeFounder {
	t.Helper()
	var ln net.Listener
	var err error
	for try := 0; try < 50; try++ { // the port of a closed fake may be in TIME_WAIT
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeFounder{id: id, addr: addr}
	f.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(clusterkit.FormationStatus{ID: id, HTTPAddr: addr, RaftAddr: addr,
			State: clusterkit.FormationWaiting, Expect: 3, Nodes: 5})
	})}
	go func() { _ = f.srv.Serve(ln) }()
	t.Cleanup(func() { f.srv.Close() })
	return f
}

// ask sends founder's promise request (or release) to the node at addr.
func (f *fakeFounder) ask(t *testing.T, addr string, release bool) clusterkit.PromiseResponse {
	t.Helper()
	b, _ := json.Marshal(clusterkit.PromiseRequest{ID: f.id, HTTPAddr: f.addr, Expect: 3, Release: release})
	resp, err := http.Post("http://"+addr+"/cluster/formation", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var pr clusterkit.PromiseResponse
	if err := json.NewDecoder(resp.Body).Decode(&pr); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("promise request: status %d, %v", resp.StatusCode, err)
	}
	return pr
}

func formationOf(t *testing.T, addr string) clusterkit.FormationStatus {
	t.Helper()
	var st clusterkit.FormationStatus
	if err := fetchJSON(addr, "/cluster/formation", &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// Two founders compete for the promises of the same waiting nodes of a
// five-node join list with BootstrapExpect 3: a waiting node promises to
// one founder at a time, so the two cannot both hold three. A promise
// outlives its time and a restart while the founder does not answer, and
// ends when the founder answers that it is still waiting. node-4 and
// node-5 are real nodes; node-1 and node-2 are founders played by the
// test; node-3 is down.
func TestFormationPromisesAreExclusive(t *testing.T) {
	baseline := runtime.NumGoroutine()
	addrs := make([]string, 5)
	for i := range addrs {
		addrs[i] = freeAddr(t)
	}
	join := strings.Join(addrs, ",")
	f1, f2 := listenFake(t, "node-1", addrs[0]), listenFake(t, "node-2", addrs[1])
	cfg := clusterkit.LocalConfig()
	opts := func(i int) clusterkit.Options {
		return clusterkit.Options{NodeID: fmt.Sprintf("node-%d", i+1), HTTPAddr: addrs[i], RaftAddr: freeAddr(t),
			JoinAddr: join, BootstrapExpect: 3, DataDir: filepath.Join(t.TempDir(), "data"), Config: &cfg,
			Logger: slog.New(slog.NewTextHandler(&logWriter{t: t}, nil))}
	}
	n4, n5 := startWaiting(t, opts(3)), startWaiting(t, opts(4))
	a4, a5 := addrs[3], addrs[4]
	waitSeen := func(addr string) {
		cktest.Eventually(t, 10*time.Second, "waiting nodes probed the join list", func() error {
			var st clusterkit.FormationStatus
			if err := fetchJSON(addr, "/cluster/formation", &st); err != nil {
				return err
			}
			if st.State != clusterkit.FormationWaiting || len(st.Seen) != 4 {
				return fmt.Errorf("%s is %s, seen %v", st.ID, st.State, st.Seen)
			}
			return nil
		})
	}
	waitSeen(a4)
	waitSeen(a5)

	// Each founder wins one node: neither holds three promises.
	if r := f2.ask(t, a4, false); !r.Granted {
		t.Fatalf("node-4 refused node-2: %s", r.Reason)
	}
	if r := f1.ask(t, a4, false); r.Granted || r.PromisedTo != "node-2" {
		t.Fatalf("node-4 promised to node-1 too: %+v", r)
	}
	if r := f1.ask(t, a5, false); !r.Granted {
		t.Fatalf("node-5 refused node-1: %s", r.Reason)
	}
	if r := f2.ask(t, a5, false); r.Granted {
		t.Fatalf("node-5 promised to node-2 too: %+v", r)
	}
	// node-2 gives its promise back; node-1 then holds three.
	f2.ask(t, a4, true)
	if r := f1.ask(t, a4, false); !r.Granted {
		t.Fatalf("node-4 refused node-1 after node-2 released it: %s", r.Reason)
	}
	for _, a := range []string{a4, a5} {
		if r := f2.ask(t, a, false); r.Granted {
			t.Fatalf("%s promised to node-2 while promised to node-1", r.ID)
		}
	}

	// node-1 stops answering: its promises lapse, and the nodes stay bound.
	f1.srv.Close()
	time.Sleep(1500 * time.Millisecond) // LocalConfig's promise lasts 1s
	for _, a := range []string{a4, a5} {
		if r := f2.ask(t, a, false); r.Granted || r.PromisedTo != "node-1" {
			t.Fatalf("%s freed from a founder that does not answer: %+v", r.ID, r)
		}
	}
	// A restart does not free node-4 either: the promise is on disk.
	n4.stop(t)
	n4 = startWaiting(t, n4.opts)
	cktest.Eventually(t, 10*time.Second, "node-4 back and through a probe", func() error {
		var st clusterkit.FormationStatus
		if err := fetchJSON(a4, "/cluster/formation", &st); err != nil {
			return err
		}
		if len(st.Seen) != 3 || st.PromisedTo != "node-1" {
			return fmt.Errorf("seen %v, promised to %q", st.Seen, st.PromisedTo)
		}
		return nil
	})
	if r := f2.ask(t, a4, false); r.Granted || r.PromisedTo != "node-1" {
		t.Fatalf("restarted node-4 forgot its promise: %+v", r)
	}

	// node-1 answers again, still waiting: it did not found, so the nodes
	// are free to promise again.
	f1 = listenFake(t, "node-1", addrs[0])
	for _, a := range []string{a4, a5} {
		cktest.Eventually(t, 10*time.Second, "promise to node-2 after node-1 answers", func() error {
			if r := f2.ask(t, a, false); !r.Granted {
				return fmt.Errorf("%s: %s", r.ID, r.Reason)
			}
			return nil
		})
	}
	for _, a := range []string{a4, a5} {
		if st := formationOf(t, a); st.State != clusterkit.FormationWaiting {
			t.Errorf("%s is %s, want waiting: only the founders play founders here", st.ID, st.State)
		}
	}
	n4.stop(t)
	n5.stop(t)
	f1.srv.Close()
	f2.srv.Close()
	http.DefaultClient.CloseIdleConnections()
	cktest.Eventually(t, 5*time.Second, "goroutines of the stopped nodes gone", func() error {
		if n := runtime.NumGoroutine(); n > baseline {
			return fmt.Errorf("%d goroutines, %d before", n, baseline)
		}
		return nil
	})
}

// A promise request from a founder that expects another number of nodes
// is refused, and a node that has promised neither founds nor promises
// another founder.
func TestFormationRefusesAnotherExpect(t *testing.T) {
	addrs := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	cfg := clusterkit.LocalConfig()
	f1 := listenFake(t, "node-1", addrs[0])
	n := startWaiting(t, clusterkit.Options{NodeID: "node-3", HTTPAddr: addrs[2], RaftAddr: freeAddr(t),
		JoinAddr: strings.Join(addrs, ","), BootstrapExpect: 2, DataDir: t.TempDir(), Config: &cfg,
		Logger: slog.New(slog.NewTextHandler(&logWriter{t: t}, nil))})
	defer n.stop(t)
	cktest.Eventually(t, 10*time.Second, "node-3 serving", func() error {
		var st clusterkit.FormationStatus
		return fetchJSON(addrs[2], "/cluster/formation", &st)
	})
	// The fake expects 3, node-3 2: node-3 does not count it and refuses it.
	if r := f1.ask(t, addrs[2], false); r.Granted || !strings.Contains(r.Reason, "expects 3") {
		t.Fatalf("node-3 answered a founder expecting 3 with %+v", r)
	}
	time.Sleep(500 * time.Millisecond)
	if st := formationOf(t, addrs[2]); st.State != clusterkit.FormationWaiting || len(st.Seen) != 1 {
		t.Fatalf("node-3 is %s and counts %v", st.State, st.Seen)
	}
}

type logWriter struct{ t *testing.T }

func (w *logWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // the test may have ended
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
