package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFlagsErrorsNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"-strategies", "quorum"}, "-strategies"},
		{[]string{"-strategies", ","}, "-strategies"},
		{[]string{"-clients", "0"}, "-clients"},
		{[]string{"-value-size", "0"}, "-value-size"},
		{[]string{"-duration", "0s"}, "-duration"},
		{[]string{"-ack", "some"}, "-ack"},
		{[]string{"-seeds", "127.0.0.1:1"}, "-seeds"},
		{[]string{"-node-procs", "-2"}, "-node-procs"},
		{[]string{"-rounds", "0"}, "-rounds"},
		{[]string{"-node-env", "FSYNC"}, "-node-env"},
		{[]string{"-node-env", "=false"}, "-node-env"},
		{[]string{"-strategies", "sync", "-seeds", "127.0.0.1:1", "-node-env", "FSYNC=false"}, "-node-env"},
		{[]string{"-strategies", "sync", "-seeds", "127.0.0.1"}, "-seeds"},
		{[]string{"-seeds", "127.0.0.1:1", "-cluster", "sync=127.0.0.1:2"}, "-seeds"},
		{[]string{"-cluster", "sync"}, "-cluster"},
		{[]string{"-cluster", "quorum=127.0.0.1:1"}, "-cluster"},
		{[]string{"-cluster", "sync="}, "-cluster"},
		{[]string{"-cluster", "sync=127.0.0.1"}, "-cluster"},
		{[]string{"-cluster", "sync=127.0.0.1:1,127.0.0.1:1"}, "-cluster"},
		{[]string{"-cluster", "sync=127.0.0.1:1", "-cluster", "sync=127.0.0.1:2"}, "-cluster"},
		{[]string{"-cluster", "sync=127.0.0.1:1", "-strategies", "async"}, "-strategies"},
		{[]string{"-cluster", "sync=127.0.0.1:1", "-nodes", "10"}, "-nodes"},
		{[]string{"-cluster", "sync=127.0.0.1:1", "-node-procs", "1"}, "-node-procs"},
		{[]string{"-cluster", "sync=127.0.0.1:1", "-node-env", "FSYNC=false"}, "-node-env"},
		{[]string{"-echo", "echo"}, "-echo"},
		{[]string{"-keys", "-1"}, "-keys"},
		{[]string{"-keys", "100000001"}, "-keys"},
		{[]string{"-mix", "1.5"}, "-mix"},
		{[]string{"-mix", "-0.1"}, "-mix"},
		{[]string{"-mix", "half"}, "-mix"},
		{[]string{"-mix", "NaN"}, "-mix"},
		{[]string{"-json", ""}, "-json"},
		{[]string{"-json", "/no/such/dir/lt.json"}, "-json"},
	} {
		_, err := parseFlags(tc.args, io.Discard)
		if err == nil || !strings.HasPrefix(err.Error(), tc.flag) {
			t.Errorf("%v: err %v, want one naming %s", tc.args, err, tc.flag)
		}
	}
	c, err := parseFlags([]string{"-strategies", "async", "-seeds", "127.0.0.1:1"}, io.Discard)
	if err != nil || len(c.clusters["async"]) != 1 || c.clients != 16 || c.valueSize != 128 || c.keys != 0 || c.mixed {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	// Each node gets its share of the cores, at least one.
	if want := max(1, runtime.NumCPU()/3); c.nodeProcs != want {
		t.Fatalf("node-procs default %d, want %d", c.nodeProcs, want)
	}
	if c, err := parseFlags([]string{"-node-env", "FSYNC=false, GOGC=100"}, io.Discard); err != nil || !slices.Equal(c.nodeEnv, []string{"FSYNC=false", "GOGC=100"}) {
		t.Fatalf("-node-env: %q, %v", c.nodeEnv, err)
	}
	if c, err := parseFlags([]string{"-nodes", "1", "-node-procs", "0"}, io.Discard); err != nil || c.nodeProcs != 0 {
		t.Fatalf("-node-procs 0: %d, %v; want 0 (Go's default)", c.nodeProcs, err)
	}
	if c, err := parseFlags([]string{"-mix", "0", "-keys", "1000"}, io.Discard); err != nil || !c.mixed || c.mix != 0 || c.keys != 1000 {
		t.Fatalf("-mix 0 -keys 1000: mix %v, keys %d, %v; want a mixed phase of writes only", c.mix, c.keys, err)
	}
}

// -cluster names running clusters, one per strategy: they are what is
// measured, in the usual order, and -strategies picks among them.
func TestClusterFlags(t *testing.T) {
	c, err := parseFlags([]string{"-cluster", "async=a-1:8080, a-2:8080", "-cluster", "sync=s-1:8080,s-2:8080,s-3:8080", "-echo", "echo:8080"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.strategies, []string{"sync", "async"}) || !slices.Equal(c.clusters["async"], []string{"a-1:8080", "a-2:8080"}) {
		t.Fatalf("strategies %q, clusters %q", c.strategies, c.clusters)
	}
	if got, want := c.mode(), "running clusters (sync: 3 nodes, async: 2 nodes), ceiling from echo:8080"; got != want {
		t.Errorf("mode %q, want %q", got, want)
	}
	c, err = parseFlags([]string{"-cluster", "async=a-1:8080", "-cluster", "sync=s-1:8080", "-strategies", "async"}, io.Discard)
	if err != nil || !slices.Equal(c.strategies, []string{"async"}) {
		t.Fatalf("-strategies async of two clusters: %q, %v", c.strategies, err)
	}
	if got, want := c.mode(), "running clusters (async: 1 node), ceiling from a local echo server"; got != want {
		t.Errorf("mode %q, want %q", got, want)
	}
	c, err = parseFlags([]string{"-bin", "bin/", "-strategies", "async"}, io.Discard)
	if got, want := c.mode(), "local 3-node clusters of processes from bin/, ceiling from a local echo server"; err != nil || got != want {
		t.Errorf("mode %q, %v; want %q", got, err, want)
	}
}

// kvServer is an in-memory KV server speaking the services' API.
func kvServer(corrupt bool) *httptest.Server { return httptest.NewServer(kvHandler(corrupt)) }

// kvHandler is the handler of kvServer: one store, which the servers
// that share the handler share.
func kvHandler(corrupt bool) http.Handler {
	var mu sync.Mutex
	data := map[string]string{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("POST /kv/set", func(w http.ResponseWriter, r *http.Request) {
		var v struct{ Key, Value string }
		if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		mu.Lock()
		data[v.Key] = v.Value
		mu.Unlock()
	})
	mux.HandleFunc("GET /kv/get", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		v, ok := data[r.URL.Query().Get("key")]
		mu.Unlock()
		if !ok {
			http.Error(w, `{"error":"not found"}`, 404)
			return
		}
		if corrupt {
			v = v[1:]
		}
		fmt.Fprintf(w, `{"value":%q}`, v)
	})
	return mux
}

func TestMeasureWritesThenVerifiesEveryRead(t *testing.T) {
	cfg := config{clients: 4, valueSize: 128, duration: 300 * time.Millisecond}
	srv := kvServer(false)
	defer srv.Close()
	tg := newPlainTarget([]string{strings.TrimPrefix(srv.URL, "http://")}, cfg.clients)
	defer tg.Close()
	r, err := measure(context.Background(), "mem", tg, cpuMeter{}, nil, cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	if r.Write.Ops == 0 || r.Read.Ops == 0 || r.Write.Errors+r.Read.Errors != 0 || r.Write.P99 < r.Write.P50 {
		t.Fatalf("result %+v", r)
	}

	bad := kvServer(true)
	defer bad.Close()
	tg2 := newPlainTarget([]string{strings.TrimPrefix(bad.URL, "http://")}, cfg.clients)
	defer tg2.Close()
	r, err = measure(context.Background(), "corrupt", tg2, cpuMeter{}, nil, cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	if r.Read.Ops != 0 || r.Read.Errors == 0 || r.Read.FirstErr == nil {
		t.Fatalf("a server returning wrong values passed: %+v", r.Read)
	}
}

// The tool end to end: a real kv-async cluster of three processes on
// 127.0.0.1, a short run, every read verified.
func TestLocalClusterRun(t *testing.T) {
	bin := buildService(t, "kv-async")
	cfg := config{strategies: []string{"async"}, binDir: bin, nodes: 3, clients: 4, valueSize: 128,
		duration: 500 * time.Millisecond, ack: "all"}
	r, err := measureStrategy(context.Background(), cfg, "async", nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if r.Write.Ops == 0 || r.Read.Ops == 0 || r.Write.Errors+r.Read.Errors != 0 {
		t.Fatalf("result %+v (first errors %v, %v)", r, r.Write.FirstErr, r.Read.FirstErr)
	}
	// The nodes did work for the clients, and the meter saw it.
	if nodes, client := r.Write.CPUPerOp(); nodes <= 0 || client <= 0 {
		t.Errorf("write CPU per op: nodes %v, client %v; want both measured", nodes, client)
	}
	var sb strings.Builder
	printTable(&sb, cfg, [][]result{{r, r}})
	if !strings.Contains(sb.String(), "| kv-async | ") {
		t.Fatalf("table:\n%s", sb.String())
	}
}

// With several rounds the table takes each row's phase from the round
// whose ratio to that round's ceiling is the median, not the median rate.
func TestTableTakesTheMedianRatio(t *testing.T) {
	ph := func(ops int) phase {
		return phase{Ops: ops, Elapsed: time.Second, P50: time.Millisecond, P99: 2 * time.Millisecond}
	}
	res := func(name string, w, r int) result {
		c := consistency("sync", "all")
		if name == "echo (ceiling)" {
			c = consistency("echo", "all")
		}
		return result{Name: name, Consistency: c, Write: ph(w), Read: ph(r)}
	}
	rounds := [][]result{
		{res("echo (ceiling)", 1000, 1000), res("kv-x", 500, 100)},  // 0.50, 0.10
		{res("echo (ceiling)", 2000, 2000), res("kv-x", 600, 1200)}, // 0.30, 0.60
		{res("echo (ceiling)", 4000, 500), res("kv-x", 1600, 200)},  // 0.40, 0.40
	}
	var sb strings.Builder
	printTable(&sb, config{nodes: 3, nodeProcs: 1, clients: 16, valueSize: 128, duration: time.Second}, rounds)
	out := sb.String()
	for _, want := range []string{
		"median of 3 rounds",
		"| Strategy | Write throughput | Write latency (p50/p99) | Read throughput | Read latency (p50/p99) | Consistency | of ceiling (writes/reads) | write CPU µs (nodes/client) | read CPU µs (nodes/client) | errors |",
		// Ceiling: the median rates (2000 writes, 1000 reads).
		"| echo (ceiling) | 2,000/s | 1.00ms / 2.00ms | 1,000/s | 1.00ms / 2.00ms | - | 1.00 / 1.00 | 0/0 | 0/0 | 0 |",
		// Writes: ratio 0.40 from round 3 (1600/s, not the median rate
		// 600/s); reads: ratio 0.40 from round 3 (200/s).
		"| kv-x | 1,600/s | 1.00ms / 2.00ms | 200/s | 1.00ms / 2.00ms | linearizable (quorum) | 0.40 / 0.40 | 0/0 | 0/0 | 0 |",
		"- kv-x: writes 0.50 0.30 0.40; reads 0.10 0.60 0.40",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// With a key space smaller than the writes, writes overwrite keys; with
// one far larger, reads must still ask only for keys written (the server
// answers 404 for the others). The mixed phase does both.
func TestKeySpaceAndMixedPhase(t *testing.T) {
	srv := kvServer(false)
	defer srv.Close()
	tg := newPlainTarget([]string{strings.TrimPrefix(srv.URL, "http://")}, 4)
	defer tg.Close()
	for _, keys := range []int{0, 10, 50_000_000} {
		cfg := config{clients: 4, valueSize: 16, keys: keys, mixed: true, mix: 0.5, duration: 200 * time.Millisecond}
		r, err := measure(context.Background(), "mem", tg, cpuMeter{}, nil, cfg, true)
		if err != nil {
			t.Fatal(err)
		}
		if r.Mixed == nil || r.Mixed.Ops == 0 || r.Read.Ops == 0 {
			t.Fatalf("keys %d: result %+v", keys, r)
		}
		for _, p := range []phase{r.Write, r.Read, *r.Mixed} {
			if p.Errors > 0 {
				t.Fatalf("keys %d: %d errors, first %v", keys, p.Errors, p.FirstErr)
			}
		}
	}
}

func TestKeySpaceReadsOnlyWrittenKeys(t *testing.T) {
	k := newKeySpace(1000, 2)
	rng := rand.New(rand.NewPCG(1, 2))
	if _, err := k.forRead(0, rng); err == nil {
		t.Fatal("a read before any write found a key")
	}
	for _, i := range []int{3, 64, 999} {
		k.wrote(0, i)
	}
	k.seal()
	seen := map[string]bool{}
	for range 200 {
		key, err := k.forRead(1, rng)
		if err != nil {
			t.Fatal(err)
		}
		seen[key] = true
	}
	if want := map[string]bool{k.name(0, 3): true, k.name(0, 64): true, k.name(0, 999): true}; !maps.Equal(seen, want) {
		t.Fatalf("read keys %v, want %v", seen, want)
	}
}

// The running-cluster mode end to end, without processes: a "server-side"
// cluster of two in-memory KV servers and a running echo server, both
// given by address. The nodes' CPU time is unknown; the clients' is not.
func TestRunningClusters(t *testing.T) {
	store := kvHandler(false)
	a, b := httptest.NewServer(store), httptest.NewServer(store)
	defer a.Close()
	defer b.Close()
	echo := httptest.NewServer(echoHandler())
	defer echo.Close()
	addr := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }
	cfg, err := parseFlags([]string{"-cluster", "server-side=" + addr(a) + "," + addr(b), "-echo", addr(echo),
		"-rounds", "2", "-clients", "2", "-duration", "200ms", "-warmup", "0s", "-mix", "0.9", "-keys", "100"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	rounds, err := run(context.Background(), cfg, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if want := "mode: running clusters (server-side: 2 nodes), ceiling from " + addr(echo) + "\n"; !strings.HasPrefix(log.String(), want) {
		t.Errorf("log starts %q, want %q", log.String(), want)
	}
	if len(rounds) != 2 || len(rounds[0]) != 2 {
		t.Fatalf("rounds %+v", rounds)
	}
	for _, r := range rounds[1] {
		if r.Mixed == nil || r.Mixed.Ops == 0 || r.Write.Errors+r.Read.Errors+r.Mixed.Errors > 0 {
			t.Fatalf("%s: %+v", r.Name, r)
		}
		if nodes, client := r.Write.CPUPerOp(); nodes != -1 || client <= 0 {
			t.Errorf("%s: CPU per write: nodes %v, client %v; want unknown, measured", r.Name, nodes, client)
		}
	}
	var sb strings.Builder
	printTable(&sb, cfg, rounds)
	for _, want := range []string{
		"Running clusters (server-side: 2 nodes), ceiling from " + addr(echo) + "\n",
		"2 clients, 128-byte values, 100 keys, 200ms per phase, mixed phase of 90% reads, median of 2 rounds\n",
		"| Strategy | Write throughput | Write latency (p50/p99) | Read throughput | Read latency (p50/p99) | Mixed (90% reads) throughput | Mixed (90% reads) latency (p50/p99) | Consistency | of ceiling (writes/reads/mixed) |",
		"| kv-server-side (ACK=all) | ",
		" | ACK=all: acknowledged on every owner (a majority at least) | ",
		"- kv-server-side (ACK=all): writes ",
	} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, sb.String())
		}
	}
	if strings.Count(sb.String(), " -/") != 2*3 {
		t.Errorf("want the nodes' CPU unknown (-) in every cell:\n%s", sb.String())
	}
}

// -json writes every figure of every round; it decodes back to the same.
func TestJSONReport(t *testing.T) {
	ph := func(ops int, servers time.Duration) phase {
		return phase{Ops: ops, Errors: 1, Elapsed: time.Second, P50: 1500 * time.Microsecond, P99: 3 * time.Millisecond,
			ServerCPU: servers, ClientCPU: time.Duration(ops) * 40 * time.Microsecond, FirstErr: errors.New("boom")}
	}
	mixed := ph(400, -1)
	rounds := [][]result{{
		{Name: "echo (ceiling)", Strategy: "echo", Consistency: "-", Write: ph(1000, -1), Read: ph(2000, -1), Mixed: &mixed},
		{Name: "kv-async", Strategy: "async", Consistency: consistency("async", "all"), Write: ph(500, -1), Read: ph(500, -1), Mixed: &mixed},
	}}
	cfg, err := parseFlags([]string{"-cluster", "async=a-1:8080,a-2:8080", "-echo", "echo:8080", "-mix", "0.25", "-keys", "1000", "-rounds", "1"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "lt.json")
	rep := newReport(cfg, time.Now(), rounds)
	if err := writeJSON(path, rep); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got jsonReport
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, rep) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", got, rep)
	}
	c := got.Config
	if c.Mode != cfg.mode() || c.Nodes["async"] != 2 || c.KeySpace != 1000 || c.Mix == nil || *c.Mix != 0.25 ||
		c.Clients != 16 || c.ValueSize != 128 || c.DurationSeconds != 5 || c.Rounds != 1 || got.Machine.CPUs != runtime.NumCPU() {
		t.Errorf("config %+v, machine %+v", c, got.Machine)
	}
	w := got.Rounds[0][1].Write
	if w.Ops != 500 || w.Rate != 500 || w.P50 != 1.5 || w.P99 != 3 || w.OfCeiling != 0.5 || w.CPUNodes != nil ||
		w.CPUClient == nil || *w.CPUClient != 40 || w.FirstError != "boom" || got.Rounds[0][1].Mixed.OfCeiling != 1 {
		t.Errorf("kv-async write %+v", w)
	}
	if !strings.Contains(string(b), `"cpu_per_op_nodes_us": null`) {
		t.Errorf("unknown CPU is not null:\n%s", b)
	}
}

// waitHealthy names the nodes that do not answer GET /health 200.
func TestWaitHealthyNamesTheNode(t *testing.T) {
	ok := kvServer(false)
	defer ok.Close()
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "starting", http.StatusServiceUnavailable)
	}))
	defer sick.Close()
	addr := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }
	if err := waitHealthy(context.Background(), []string{addr(ok)}, security{}, time.Second, io.Discard); err != nil {
		t.Fatal(err)
	}
	err := waitHealthy(context.Background(), []string{addr(ok), addr(sick)}, security{}, 700*time.Millisecond, io.Discard)
	if err == nil || !strings.Contains(err.Error(), addr(sick)+" (GET http://"+addr(sick)+"/health: 503)") || strings.Contains(err.Error(), addr(ok)) {
		t.Fatalf("err %v, want one naming %s only", err, addr(sick))
	}
}

// buildService builds a service's binary into a directory of the test and
// returns the directory.
func buildService(t *testing.T, service string) string {
	t.Helper()
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, service), ".")
	build.Dir = filepath.Join("..", "services", service)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", service, err, out)
	}
	return bin
}
