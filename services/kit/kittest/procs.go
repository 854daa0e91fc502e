package kittest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
	"clusterkit.dev/services/kit/migrate"
)

// Nodes as processes. A node stopped with SIGSTOP stands for a paused VM, a
// stalled process or a machine cut off by the network: the kernel still
// accepts its connections, and nothing answers. A node killed with SIGKILL
// crashes: no clean stop, no flush.

// Binary is a service's command, built once for a test run. A package's
// TestMain removes it (Remove) after the tests.
type Binary struct {
	once      sync.Once
	dir, path string
	err       error
}

// Build returns the path of the command named name, built from the
// package pkg (relative to the test's directory, as for go build) on first
// use.
func (b *Binary) Build(t testing.TB, name, pkg string) string {
	t.Helper()
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", name+"-bin"); b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, name)
		if out, err := exec.Command("go", "build", "-o", b.path, pkg).CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// Main is the TestMain of a package that builds the command: it runs
// the package's tests, removes the command, and exits with the tests'
// code.
func (b *Binary) Main(m *testing.M) {
	code := m.Run()
	b.Remove()
	os.Exit(code)
}

// Remove deletes the built command.
func (b *Binary) Remove() {
	if b.dir != "" {
		_ = os.RemoveAll(b.dir)
	}
}

// Proc is one node running as its own process.
type Proc struct {
	ID, HTTP string
	Env      []string
	LogPath  string
	cmd      *exec.Cmd
}

// Kill resumes the process, in case it was stopped, and kills it with
// SIGKILL.
func (p *Proc) Kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
	p.cmd = nil
}

// Procs is a cluster of a service's nodes as processes on 127.0.0.1.
type Procs struct {
	T     *testing.T
	Bin   string
	Dir   string   // the nodes' data directories and logs
	Env   []string // added to every node's environment
	Nodes []*Proc
	HC    *http.Client
	// ReadQuery is the query, besides the key, of a read that an owner
	// serves from its own data; WaitReady asks it of every owner.
	// StartProcs sets it to "local=true".
	ReadQuery string
}

// StartProcs starts n processes of bin, the first founding the cluster and
// the others joining it, with env added to every node's environment. It
// does not wait for them (WaitReady). The processes are resumed (if
// stopped) and killed when the test ends; their logs are shown if it
// failed.
func StartProcs(t *testing.T, bin string, n int, env ...string) *Procs {
	t.Helper()
	dir := t.TempDir()
	pc := &Procs{T: t, Bin: bin, Dir: dir, Env: env, HC: &http.Client{Timeout: 10 * time.Second}, ReadQuery: "local=true"}
	var joins []string
	for i := range n {
		p := &Proc{ID: fmt.Sprintf("node-%d", i+1), HTTP: cktest.FreeAddr(t)}
		p.LogPath = filepath.Join(dir, p.ID+".log")
		joins = append(joins, p.HTTP)
		pc.Nodes = append(pc.Nodes, p)
	}
	t.Cleanup(func() {
		for _, p := range pc.Nodes {
			p.Kill()
		}
		pc.HC.CloseIdleConnections()
		if t.Failed() {
			for _, p := range pc.Nodes {
				if b, err := os.ReadFile(p.LogPath); err == nil {
					t.Logf("log of %s:\n%s", p.ID, Tail(string(b), 60))
				}
			}
		}
	})
	for i, p := range pc.Nodes {
		p.Env = pc.nodeEnv(p, joins, i == 0)
		pc.Start(i)
	}
	return pc
}

// StartReady starts n processes of bin as StartProcs does, and waits at
// most timeout until every node owns and holds its partitions
// (WaitReady).
func StartReady(t *testing.T, bin string, n int, timeout time.Duration, env ...string) *Procs {
	t.Helper()
	pc := StartProcs(t, bin, n, env...)
	pc.WaitReady(pc.All(), timeout)
	return pc
}

// nodeEnv returns p's environment: its addresses, data directory, joins,
// then the cluster's Env.
func (pc *Procs) nodeEnv(p *Proc, joins []string, bootstrap bool) []string {
	return append([]string{"NODE_ID=" + p.ID, "HTTP_ADDR=" + p.HTTP, "RAFT_ADDR=" + cktest.FreeAddr(pc.T),
		"DATA_DIR=" + filepath.Join(pc.Dir, p.ID), "LOG_LEVEL=warn",
		"JOIN_ADDR=" + strings.Join(joins, ","), fmt.Sprintf("BOOTSTRAP=%v", bootstrap)}, pc.Env...)
}

// Add starts one more node, joining through every node, and returns its
// index. It does not wait for it to be ready.
func (pc *Procs) Add() int {
	pc.T.Helper()
	p := &Proc{ID: fmt.Sprintf("node-%d", len(pc.Nodes)+1), HTTP: cktest.FreeAddr(pc.T)}
	p.LogPath = filepath.Join(pc.Dir, p.ID+".log")
	p.Env = pc.nodeEnv(p, pc.Seeds(), false)
	pc.Nodes = append(pc.Nodes, p)
	pc.Start(len(pc.Nodes) - 1)
	return len(pc.Nodes) - 1
}

// Seeds returns every node's address.
func (pc *Procs) Seeds() []string {
	var out []string
	for _, p := range pc.Nodes {
		out = append(out, p.HTTP)
	}
	return out
}

// All returns the indexes of every node.
func (pc *Procs) All() []int {
	var idx []int
	for i := range pc.Nodes {
		idx = append(idx, i)
	}
	return idx
}

// Start starts node i's process, appending to its log.
func (pc *Procs) Start(i int) {
	pc.T.Helper()
	p := pc.Nodes[i]
	logf, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		pc.T.Fatal(err)
	}
	defer logf.Close()
	p.cmd = exec.Command(pc.Bin)
	p.cmd.Env = append(os.Environ(), p.Env...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		pc.T.Fatalf("start %s: %v", p.ID, err)
	}
}

// Signal sends sig to node i's process. After SIGSTOP it returns once the
// kernel shows the process stopped (the signal is delivered
// asynchronously), so that what the test does next meets a node that
// cannot answer.
func (pc *Procs) Signal(i int, sig syscall.Signal) {
	pc.T.Helper()
	p := pc.Nodes[i].cmd.Process
	if err := p.Signal(sig); err != nil {
		pc.T.Fatalf("%v to %s: %v", sig, pc.Nodes[i].ID, err)
	}
	if sig != syscall.SIGSTOP {
		return
	}
	stat := fmt.Sprintf("/proc/%d/stat", p.Pid)
	for deadline := time.Now().Add(2 * time.Second); ; {
		b, err := os.ReadFile(stat)
		if err != nil {
			pc.T.Fatalf("%s: %v", stat, err)
		}
		// The state follows the command name in parentheses.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'T' {
			return
		}
		if time.Now().After(deadline) {
			pc.T.Fatalf("%s did not stop within 2s of SIGSTOP", pc.Nodes[i].ID)
		}
		time.Sleep(time.Millisecond)
	}
}

// ClusterInfo is node i's GET /cluster.
func (pc *Procs) ClusterInfo(i int) (*clusterkit.ClusterInfo, error) {
	resp, err := pc.HC.Get("http://" + pc.Nodes[i].HTTP + "/cluster")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: GET /cluster: %s", pc.Nodes[i].ID, resp.Status)
	}
	var info clusterkit.ClusterInfo
	return &info, json.NewDecoder(resp.Body).Decode(&info)
}

// WaitReady waits, at most timeout, until the nodes live see every node,
// every partition has a primary and RF-1 replicas and no joining owner in
// their maps, and every owner among them serves reads of its partitions
// from its own data (ReadQuery).
func (pc *Procs) WaitReady(live []int, timeout time.Duration) {
	pc.T.Helper()
	cktest.Eventually(pc.T, timeout, "cluster of processes ready", func() error {
		for _, i := range live {
			p := pc.Nodes[i]
			info, err := pc.ClusterInfo(i)
			if err != nil {
				return err
			}
			if len(info.Nodes) != len(pc.Nodes) || len(info.Partitions) == 0 {
				return fmt.Errorf("%s sees %d nodes, %d partitions", p.ID, len(info.Nodes), len(info.Partitions))
			}
			for _, part := range info.Partitions {
				if part.PrimaryNode == "" || len(part.ReplicaNodes) != info.ReplicationFactor-1 || len(part.JoiningNodes) > 0 {
					return fmt.Errorf("%s: %s is %s+%v, joining %v", p.ID, part.ID, part.PrimaryNode, part.ReplicaNodes, part.JoiningNodes)
				}
				key := KeyOfPartition(part.Index, info.PartitionCount)
				for _, j := range live {
					q := pc.Nodes[j]
					if !migrate.Owner(&part, q.ID) {
						continue
					}
					resp, err := pc.HC.Get("http://" + q.HTTP + "/kv/get?" + pc.ReadQuery + "&key=" + url.QueryEscape(key))
					if err != nil {
						return err
					}
					DrainBody(resp.Body)
					if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound {
						return fmt.Errorf("local read of %s on %s: %s", part.ID, q.ID, resp.Status)
					}
				}
			}
		}
		return nil
	})
}

// Leader returns the index of the raft leader, as node i sees it.
func (pc *Procs) Leader(i int) int {
	pc.T.Helper()
	info, err := pc.ClusterInfo(i)
	if err != nil {
		pc.T.Fatal(err)
	}
	for j, p := range pc.Nodes {
		if p.ID == info.LeaderID {
			return j
		}
	}
	pc.T.Fatalf("leader %q is not a node of the test", info.LeaderID)
	return -1
}

// Victim returns the node a test of a fault hits: the raft leader, as
// node 0 sees it, with leader, else a follower.
func (pc *Procs) Victim(leader bool) int {
	pc.T.Helper()
	v := pc.Leader(0)
	if !leader {
		v = (v + 1) % len(pc.Nodes)
	}
	return v
}

// Others returns the nodes but node v: their HTTP addresses and indexes.
func (pc *Procs) Others(v int) (addrs []string, idx []int) {
	for i, p := range pc.Nodes {
		if i != v {
			addrs = append(addrs, p.HTTP)
			idx = append(idx, i)
		}
	}
	return addrs, idx
}

// KeyOfPartition returns a key of partition p of count.
func KeyOfPartition(p, count int) string {
	for i := 0; ; i++ {
		if k := fmt.Sprintf("probe-%d", i); clusterkit.PartitionIndex(k, count) == p {
			return k
		}
	}
}

// DrainBody reads b to its end and closes it, so that its connection is
// reused.
func DrainBody(b io.ReadCloser) {
	_, _ = io.Copy(io.Discard, b)
	_ = b.Close()
}

// Tail returns the last lines of s.
func Tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}
