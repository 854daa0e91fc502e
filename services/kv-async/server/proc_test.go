package server

import (
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
)

// Nodes as processes. A node stopped with SIGSTOP stands for a paused VM, a
// stalled process or a machine cut off by the network: the kernel still
// accepts its connections, and nothing answers.

func TestMain(m *testing.M) {
	code := m.Run()
	if nodeBin.dir != "" {
		_ = os.RemoveAll(nodeBin.dir)
	}
	os.Exit(code)
}

// nodeBin is the kv-async command, built once per test run; TestMain
// removes it.
var nodeBin struct {
	once      sync.Once
	dir, path string
	err       error
}

// buildNode returns the path of the kv-async command, building it on
// first use.
func buildNode(t *testing.T) string {
	t.Helper()
	nodeBin.once.Do(func() {
		if nodeBin.dir, nodeBin.err = os.MkdirTemp("", "kv-async-bin"); nodeBin.err != nil {
			return
		}
		nodeBin.path = filepath.Join(nodeBin.dir, "kv-async")
		if out, err := exec.Command("go", "build", "-o", nodeBin.path, "..").CombinedOutput(); err != nil {
			nodeBin.err = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if nodeBin.err != nil {
		t.Fatal(nodeBin.err)
	}
	return nodeBin.path
}

// nodeProc is one kv-async node running as its own process.
type nodeProc struct {
	id, http string
	env      []string
	logPath  string
	cmd      *exec.Cmd
}

// procCluster is a cluster of kv-async processes on 127.0.0.1.
type procCluster struct {
	t     *testing.T
	bin   string
	nodes []*nodeProc
	hc    *http.Client
}

// startProcCluster starts n kv-async processes, the first founding the
// cluster and the others joining it, with env added to every node's
// environment, and waits until every partition has a primary and its
// replicas everywhere and every owner serves it. The processes are resumed
// (if stopped) and killed when the test ends; their logs are shown if it
// failed.
func startProcCluster(t *testing.T, n int, env ...string) *procCluster {
	t.Helper()
	pc := &procCluster{t: t, bin: buildNode(t), hc: &http.Client{Timeout: 5 * time.Second}}
	dir := t.TempDir()
	var joins []string
	for i := range n {
		p := &nodeProc{id: fmt.Sprintf("node-%d", i+1), http: cktest.FreeAddr(t)}
		p.logPath = filepath.Join(dir, p.id+".log")
		joins = append(joins, p.http)
		pc.nodes = append(pc.nodes, p)
	}
	t.Cleanup(func() {
		for _, p := range pc.nodes {
			p.kill()
		}
		pc.hc.CloseIdleConnections()
		if t.Failed() {
			for _, p := range pc.nodes {
				if b, err := os.ReadFile(p.logPath); err == nil {
					t.Logf("log of %s:\n%s", p.id, tail(string(b), 40))
				}
			}
		}
	})
	for i, p := range pc.nodes {
		p.env = append([]string{"NODE_ID=" + p.id, "HTTP_ADDR=" + p.http, "RAFT_ADDR=" + cktest.FreeAddr(t),
			"DATA_DIR=" + filepath.Join(dir, p.id), "LOG_LEVEL=warn",
			"JOIN_ADDR=" + strings.Join(joins, ","), fmt.Sprintf("BOOTSTRAP=%v", i == 0)}, env...)
		pc.start(i)
	}
	pc.waitReady()
	return pc
}

// start starts node i's process.
func (pc *procCluster) start(i int) {
	pc.t.Helper()
	p := pc.nodes[i]
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		pc.t.Fatal(err)
	}
	defer logf.Close()
	p.cmd = exec.Command(pc.bin)
	p.cmd.Env = append(os.Environ(), p.env...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		pc.t.Fatalf("start %s: %v", p.id, err)
	}
}

// kill resumes the process, in case it was stopped, and kills it.
func (p *nodeProc) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
	p.cmd = nil
}

// signal sends sig to node i's process.
func (pc *procCluster) signal(i int, sig syscall.Signal) {
	pc.t.Helper()
	if err := pc.nodes[i].cmd.Process.Signal(sig); err != nil {
		pc.t.Fatalf("%v to %s: %v", sig, pc.nodes[i].id, err)
	}
}

// index returns the index of the node with the given ID.
func (pc *procCluster) index(id string) int {
	pc.t.Helper()
	for i, p := range pc.nodes {
		if p.id == id {
			return i
		}
	}
	pc.t.Fatalf("no node %q", id)
	return -1
}

// seeds returns every node's address.
func (pc *procCluster) seeds() []string {
	var out []string
	for _, p := range pc.nodes {
		out = append(out, p.http)
	}
	return out
}

// getJSON GETs path from node i into out.
func (pc *procCluster) getJSON(i int, path string, out any) error {
	resp, err := pc.hc.Get("http://" + pc.nodes[i].http + path)
	if err != nil {
		return err
	}
	defer drainBody(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: GET %s: %s", pc.nodes[i].id, path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// waitReady waits until every node's map has every node, every partition
// a primary and RF-1 ready replicas, and every owner serves reads of every
// partition it owns.
func (pc *procCluster) waitReady() {
	pc.t.Helper()
	cktest.Eventually(pc.t, 40*time.Second, "cluster of processes ready", func() error {
		for i, p := range pc.nodes {
			var info clusterkit.ClusterInfo
			if err := pc.getJSON(i, "/cluster", &info); err != nil {
				return err
			}
			if len(info.Nodes) != len(pc.nodes) || len(info.Partitions) == 0 {
				return fmt.Errorf("%s sees %d nodes, %d partitions", p.id, len(info.Nodes), len(info.Partitions))
			}
			for _, part := range info.Partitions {
				if part.PrimaryNode == "" || len(part.ReplicaNodes) != info.ReplicationFactor-1 || len(part.JoiningNodes) > 0 {
					return fmt.Errorf("%s: %s is %s+%v, joining %v", p.id, part.ID, part.PrimaryNode, part.ReplicaNodes, part.JoiningNodes)
				}
				key := keyOfPartition(part.Index, info.PartitionCount)
				for _, id := range append([]string{part.PrimaryNode}, part.ReplicaNodes...) {
					q := pc.nodes[pc.index(id)]
					resp, err := pc.hc.Get("http://" + q.http + "/kv/get?consistency=any&key=" + url.QueryEscape(key))
					if err != nil {
						return err
					}
					drainBody(resp.Body)
					if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound {
						return fmt.Errorf("read of %s on %s: %s", part.ID, q.id, resp.Status)
					}
				}
			}
		}
		return nil
	})
}

// replicated waits until node i, as primary, has every write it accepted
// on every replica.
func (pc *procCluster) replicated(i int) {
	pc.t.Helper()
	cktest.Eventually(pc.t, 20*time.Second, pc.nodes[i].id+" replicated", func() error {
		var st ReplicationStatus
		if err := pc.getJSON(i, "/kv/replication", &st); err != nil {
			return err
		}
		if st.Operations != 0 {
			return fmt.Errorf("%d writes not replicated", st.Operations)
		}
		return nil
	})
}

// keyOfPartition returns a key of partition p.
func keyOfPartition(p, count int) string {
	for i := 0; ; i++ {
		if k := fmt.Sprintf("probe-%d", i); clusterkit.PartitionIndex(k, count) == p {
			return k
		}
	}
}

func drainBody(b io.ReadCloser) {
	_, _ = io.Copy(io.Discard, b)
	_ = b.Close()
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}
