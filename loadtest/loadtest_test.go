package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
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
	} {
		_, err := parseFlags(tc.args, io.Discard)
		if err == nil || !strings.HasPrefix(err.Error(), tc.flag) {
			t.Errorf("%v: err %v, want one naming %s", tc.args, err, tc.flag)
		}
	}
	c, err := parseFlags([]string{"-strategies", "async", "-seeds", "127.0.0.1:1"}, io.Discard)
	if err != nil || len(c.seeds) != 1 || c.clients != 16 || c.valueSize != 128 {
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
}

// kvServer is an in-memory KV server speaking the services' API.
func kvServer(corrupt bool) *httptest.Server {
	var mu sync.Mutex
	data := map[string]string{}
	mux := http.NewServeMux()
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
	return httptest.NewServer(mux)
}

func TestMeasureWritesThenVerifiesEveryRead(t *testing.T) {
	cfg := config{clients: 4, valueSize: 128, duration: 300 * time.Millisecond}
	srv := kvServer(false)
	defer srv.Close()
	tg := newPlainTarget([]string{strings.TrimPrefix(srv.URL, "http://")}, cfg.clients)
	defer tg.Close()
	r, err := measure(context.Background(), "mem", tg, cpuMeter{}, cfg, true)
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
	r, err = measure(context.Background(), "corrupt", tg2, cpuMeter{}, cfg, true)
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
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "kv-async"), ".")
	build.Dir = "../services/kv-async"
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build kv-async: %v\n%s", err, out)
	}
	cfg := config{strategies: []string{"async"}, binDir: bin, nodes: 3, clients: 4, valueSize: 128,
		duration: 500 * time.Millisecond, ack: "all"}
	r, err := measureStrategy(context.Background(), cfg, "async", io.Discard)
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
	res := func(name string, w, r int) result { return result{Name: name, Write: ph(w), Read: ph(r)} }
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
		// Ceiling: the median rates (2000 writes, 1000 reads).
		"| echo (ceiling) | 2000 | 1.00 |",
		// Writes: ratio 0.40 from round 3 (1600/s, not the median rate
		// 600/s); reads: ratio 0.40 from round 3 (200/s).
		"| kv-x | 1600 | 0.40 | 1.00ms | 2.00ms | 0/0 | 200 | 0.40 |",
		"- kv-x: writes 0.50 0.30 0.40; reads 0.10 0.60 0.40",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}
