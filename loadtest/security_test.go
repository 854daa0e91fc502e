package main

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"clusterkit.dev/clusterkit/certs"
)

func TestSecurityFlags(t *testing.T) {
	dir := t.TempDir()
	ca, err := certs.NewCA("loadtest test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.WriteFiles(dir, []string{"node-1", "node-2"}, nil, time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"-token", "secret", "-strategies", "server-side"}, "-token"},
		{[]string{"-token", "secret"}, "-token"}, // every strategy by default
		{[]string{"-tls-dir", dir, "-strategies", "server-side"}, "-tls-dir"},
		{[]string{"-tls-dir", filepath.Join(dir, "none"), "-strategies", "sync"}, "-tls-dir"},
		{[]string{"-tls-dir", dir, "-strategies", "sync"}, "-tls-dir"}, // no node-3 for the default 3 nodes
	} {
		if _, err := parseFlags(tc.args, io.Discard); err == nil || !strings.HasPrefix(err.Error(), tc.flag) {
			t.Errorf("%v: err %v, want one naming %s", tc.args, err, tc.flag)
		}
	}
	c, err := parseFlags([]string{"-tls-dir", dir, "-token", "secret", "-strategies", "sync", "-nodes", "2"}, io.Discard)
	if err != nil || c.sec.tls == nil || c.sec.scheme() != "https" {
		t.Fatalf("-tls-dir with two nodes' certificates: %+v, %v", c.sec, err)
	}
	if got, want := c.mode(), "local 2-node clusters of processes from bin/, with the cluster token and TLS, ceiling from a local echo server"; got != want {
		t.Errorf("mode %q, want %q", got, want)
	}
	if env := strings.Join(c.sec.nodeEnv(), " "); env != "CLUSTER_TOKEN=secret TLS_DIR="+dir {
		t.Errorf("node environment %q", env)
	}
	if _, err := parseFlags([]string{"-tls-dir", dir, "-token", "secret", "-strategies", "sync,async", "-nodes", "2"}, io.Discard); err != nil {
		t.Errorf("kv-sync and kv-async with the token and TLS: %v", err)
	}
	// A running cluster needs only the CA.
	c, err = parseFlags([]string{"-tls-dir", dir, "-cluster", "sync=kv-sync-1:8080,kv-sync-2:8080,kv-sync-3:8080"}, io.Discard)
	if err != nil || c.sec.tls == nil {
		t.Fatalf("-tls-dir of a running cluster: %+v, %v", c.sec, err)
	}
}

// The tool end to end against secured kv-sync and kv-async clusters of three
// processes: the nodes refuse plain HTTP and a join without the token,
// and the measured run, over HTTPS with the token, has no error.
func TestLocalSecuredClusterRun(t *testing.T) {
	bin := buildService(t, "kv-sync")
	async := exec.Command("go", "build", "-o", filepath.Join(bin, "kv-async"), ".")
	async.Dir = filepath.Join("..", "services", "kv-async")
	if out, err := async.CombinedOutput(); err != nil {
		t.Fatalf("build kv-async: %v\n%s", err, out)
	}
	dir := t.TempDir()
	ca, err := certs.NewCA("loadtest test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.WriteFiles(dir, []string{"node-1", "node-2", "node-3"}, nil, time.Hour); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseFlags([]string{"-bin", bin, "-strategies", "sync,async", "-token", "loadtest-token-0123456789", "-tls-dir", dir,
		"-clients", "4", "-duration", "500ms", "-warmup", "0s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	c, err := startCluster(ctx, filepath.Join(bin, "kv-sync"), 3, cfg.sec.nodeEnv(), cfg.sec, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	if resp, err := hc.Get("http://" + c.addrs[0] + "/health"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to a TLS node: %d, want an error or 400", resp.StatusCode)
		}
	}
	secured := security{tls: cfg.sec.tls}.client(2 * time.Second) // the CA, no token
	resp, err := secured.Post("https://"+c.addrs[0]+"/cluster/join", "application/json",
		strings.NewReader(`{"id":"intruder","http_addr":"127.0.0.1:1","raft_addr":"127.0.0.1:2"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("join without the token: %d, want 401", resp.StatusCode)
	}
	c.stop()

	for _, strategy := range []string{"sync", "async"} {
		r, err := measureStrategy(ctx, cfg, strategy, nil, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if r.Write.Ops == 0 || r.Read.Ops == 0 || r.Write.Errors+r.Read.Errors != 0 {
			t.Fatalf("%s: result %+v (first errors %v, %v)", strategy, r, r.Write.FirstErr, r.Read.FirstErr)
		}
	}
}
