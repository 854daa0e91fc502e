package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// zones puts the five test nodes in three zones.
var zones = []string{"z1", "z2", "z3", "z1", "z2"}

// formedCluster starts five nodes that form the cluster together
// (BootstrapExpect), so that the first table is placement's table for all
// five at once and every run sees the same map.
func formedCluster(t *testing.T) *cktest.Cluster {
	t.Helper()
	c := cktest.NewStopped(t, 5, cktest.WithSetup(func(i int, o *clusterkit.Options) { o.Zone = zones[i] }))
	for _, m := range c.Members() {
		m.Options.Bootstrap = false
		m.Options.BootstrapExpect = 5
	}
	c.StartAll()
	c.WaitConverged()
	return c
}

// volatile matches what differs between runs: ports, times, map versions
// and terms (the number of commands before a change depends on timing).
var volatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`127\.0\.0\.1:\d+`), "127.0.0.1:PORT"},
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`), "TIME"},
	{regexp.MustCompile(`== \d\d:\d\d:\d\d`), "== TIME"},
	{regexp.MustCompile(`(version|term)( +)\d+`), "$1${2}N"},
	{regexp.MustCompile(`"(version|term|at|since)": \d+`), `"$1": N`},
	{regexp.MustCompile(`(?m)^(\d+ +)\d+( +TIME)`), "${1}N$2"},
	{regexp.MustCompile(`(\S)  +`), "$1  "},
}

func normalize(s string) string {
	for _, v := range volatile {
		s = v.re.ReplaceAllString(s, v.with)
	}
	return s
}

// ckctl runs the command in-process against addr and returns its exit
// status and output.
func ckctl(t *testing.T, addr string, argv ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := func(k string) string {
		if k == "CLUSTERKIT_ADDR" {
			return addr
		}
		return ""
	}
	code := run(context.Background(), argv, &out, &errOut, env)
	return code, out.String(), errOut.String()
}

// golden compares got with testdata/name.golden, or rewrites it with
// -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	got = normalize(got)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}

// TestGolden runs every command against a real five-node cluster in three
// zones, through a drain and a leave, and compares each output with its
// golden file.
func TestGolden(t *testing.T) {
	c := formedCluster(t)
	addr := c.Member(1).HTTPAddr() // a follower: what needs the leader is forwarded
	steps := []struct {
		name string
		argv []string
		code int
		// before runs first.
		before func()
	}{
		{name: "status", argv: []string{"status"}},
		{name: "status-json", argv: []string{"status", "-o", "json"}},
		{name: "nodes", argv: []string{"nodes"}},
		{name: "partitions", argv: []string{"partitions"}},
		{name: "partitions-node", argv: []string{"partitions", "--node", "node-2", "--primary", "node-2"}},
		{name: "key", argv: []string{"key", "user:123"}},
		{name: "key-json", argv: []string{"key", "user:123", "-o", "json"}},
		{name: "explain", argv: []string{"explain", "3"}},
		{name: "plan-drain", argv: []string{"plan", "drain", "node-5"}},
		{name: "plan-join", argv: []string{"plan", "join", "node-6", "--zone", "z3", "--weight", "2"}},
		{name: "drain", argv: []string{"drain", "node-5", "--wait", "-o", "json"}},
		{name: "partitions-moving", argv: []string{"partitions", "--moving"}},
		{name: "history", argv: []string{"history", "3"}},
		{name: "nodes-drained", argv: []string{"nodes"}},
		{name: "leave", argv: []string{"leave", "node-5"}, before: func() { c.Stop(4) }},
		{name: "status-after-leave", argv: []string{"status"}},
		{name: "watch", argv: []string{"watch", "--count", "1"}},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		code, out, errOut := ckctl(t, addr, s.argv...)
		if code != s.code {
			t.Fatalf("ckctl %s: exit %d, want %d\n%s%s", strings.Join(s.argv, " "), code, s.code, out, errOut)
		}
		golden(t, s.name, out)
	}
}

// TestExitCodes checks the exit status and message of each kind of
// failure, and that a failure prints nothing on standard output.
func TestExitCodes(t *testing.T) {
	// While stall is set, no node finishes copying a partition, so a
	// drain cannot end.
	var stall atomic.Bool
	c := cktest.New(t, 4, cktest.WithInit(func(_ *cktest.Member, ck *clusterkit.ClusterKit) {
		ck.OnPartitionEvent(func(_ context.Context, ev clusterkit.PartitionEvent) error {
			if ev.NewRole == clusterkit.RoleJoining && stall.Load() {
				return errors.New("stalled by the test")
			}
			return nil
		})
	}))
	c.WaitConverged()
	addr := c.Member(0).HTTPAddr()
	for _, tc := range []struct {
		argv []string
		code int
		msg  string
	}{
		{[]string{"key"}, exitUsage, "accepts 1 arg"},
		{[]string{"status", "-o", "yaml"}, exitUsage, "--output"},
		{[]string{"status", "--nope"}, exitUsage, "unknown flag"},
		{[]string{"plan", "move", "node-1"}, exitUsage, "not join, leave or drain"},
		{[]string{"plan", "drain", "node-1", "--zone", "z"}, exitUsage, "--zone"},
		{[]string{"explain", "x"}, exitUsage, "not a partition number"},
		{[]string{"history", "1", "--node", "node-1"}, exitUsage, "not both"},
		{[]string{"explain", "99"}, exitRefused, "partition"},
		{[]string{"plan", "drain", "ghost"}, exitRefused, "ghost"},
		{[]string{"drain", "ghost"}, exitRefused, "ghost"},
		{[]string{"--addr", cktest.FreeAddr(t), "status"}, exitUnavailable, "connect"},
		{[]string{"drain", "node-4", "--wait", "--timeout", "1s"}, exitTimeout, "node-4 still owns"},
	} {
		if tc.code == exitTimeout {
			stall.Store(true)
		}
		code, out, errOut := ckctl(t, addr, tc.argv...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("ckctl %s: exit %d, stderr %q; want %d and %q", strings.Join(tc.argv, " "), code, errOut, tc.code, tc.msg)
		}
		if tc.code != exitTimeout && out != "" {
			t.Errorf("ckctl %s printed %q on failure", strings.Join(tc.argv, " "), out)
		}
	}
	// A stopped node makes status exit 5 and say why.
	c.Stop(2)
	cktest.Eventually(t, 10e9, "status to see node-3 down", func() error {
		code, out, _ := ckctl(t, addr, "status")
		if code != exitUnhealthy || !strings.Contains(out, "node-3 is") {
			return fmt.Errorf("exit %d:\n%s", code, out)
		}
		return nil
	})
}
