package clusterkit_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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

// proc is a node running as its own process (examples/quickstart).
type proc struct {
	id, http string
	env      []string
	cmd      *exec.Cmd
	// logs holds every line the process wrote, across restarts.
	logs *lockedBuffer
}

func (p *proc) start(t *testing.T, bin string) {
	t.Helper()
	if p.logs == nil {
		p.logs = &lockedBuffer{}
	}
	p.cmd = exec.Command(bin)
	p.cmd.Env = append(os.Environ(), p.env...)
	w := &testWriter{t: t, prefix: p.id, also: p.logs}
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
}

// quickstartBuild is examples/quickstart, built once for the tests of the
// package and removed by TestMain.
var quickstartBuild struct {
	once     sync.Once
	dir, bin string
	err      error
}

// buildQuickstart returns the path of the quickstart binary.
func buildQuickstart(t *testing.T) string {
	t.Helper()
	b := &quickstartBuild
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "clusterkit-quickstart-"); b.err != nil {
			return
		}
		b.bin = filepath.Join(b.dir, "quickstart")
		if out, err := exec.Command("go", "build", "-o", b.bin, "./examples/quickstart").CombinedOutput(); err != nil {
			b.err = fmt.Errorf("%w\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatalf("build quickstart: %v", b.err)
	}
	return b.bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if quickstartBuild.dir != "" {
		os.RemoveAll(quickstartBuild.dir)
	}
	os.Exit(code)
}

// lockedBuffer collects a process's output for the test to search.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (p *proc) kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		_ = p.cmd.Wait()
		p.cmd = nil
	}
}

type testWriter struct {
	t      *testing.T
	prefix string
	also   io.Writer // if set, gets a copy of everything written
}

func (w *testWriter) Write(b []byte) (int, error) {
	if w.also != nil {
		_, _ = w.also.Write(b)
	}
	defer func() { _ = recover() }() // the test may have ended
	w.t.Log(w.prefix + ": " + strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func clusterInfo(addr string) (*clusterkit.ClusterInfo, error) {
	resp, err := http.Get("http://" + addr + "/cluster")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	var info clusterkit.ClusterInfo
	return &info, json.NewDecoder(resp.Body).Decode(&info)
}

// Three nodes as processes; one is killed with SIGKILL. Its partitions fail
// over to live replicas, and it comes back from its data directory.
func TestSIGKILLedProcessFailsOverAndComesBack(t *testing.T) {
	dir := t.TempDir()
	bin := buildQuickstart(t)
	procs := make([]*proc, 3)
	var joins []string
	for i := range procs {
		p := &proc{id: fmt.Sprintf("node-%d", i+1), http: freeAddr(t)}
		joins = append(joins, p.http)
		procs[i] = p
	}
	for i, p := range procs {
		p.env = []string{"NODE_ID=" + p.id, "HTTP_ADDR=" + p.http, "RAFT_ADDR=" + freeAddr(t),
			"JOIN_ADDR=" + strings.Join(joins, ","), "DATA_DIR=" + filepath.Join(dir, p.id),
			"PRESET=local", fmt.Sprintf("BOOTSTRAP=%v", i == 0)}
		p.start(t, bin)
		defer p.kill()
	}
	var info *clusterkit.ClusterInfo
	cktest.Eventually(t, 30*time.Second, "cluster of three processes", func() error {
		var err error
		if info, err = clusterInfo(procs[2].http); err != nil {
			return err
		}
		owners := map[string]bool{}
		for _, p := range info.Partitions {
			owners[p.PrimaryNode] = true
		}
		if len(info.Nodes) != 3 || len(owners) != 3 {
			return fmt.Errorf("%d nodes, %d primaries owners", len(info.Nodes), len(owners))
		}
		return nil
	})
	var victim *proc
	for _, p := range procs {
		if p.id != info.LeaderID {
			victim = p
			break
		}
	}
	killed := time.Now()
	victim.kill()
	for _, p := range procs {
		if p == victim {
			continue
		}
		cktest.Eventually(t, 20*time.Second, "failover seen by "+p.id, func() error {
			info, err := clusterInfo(p.http)
			if err != nil {
				return err
			}
			for _, part := range info.Partitions {
				if part.PrimaryNode == victim.id {
					return fmt.Errorf("%s still led by %s", part.ID, victim.id)
				}
			}
			return nil
		})
	}
	t.Logf("SIGKILL to failover on every live node: %v", time.Since(killed))

	victim.start(t, bin)
	cktest.Eventually(t, 30*time.Second, "killed node back", func() error {
		info, err := clusterInfo(victim.http)
		if err != nil {
			return err
		}
		for _, n := range info.Nodes {
			if n.ID == victim.id && n.State == clusterkit.NodeAlive {
				return nil
			}
		}
		return fmt.Errorf("%s not alive in its own map", victim.id)
	})
}
