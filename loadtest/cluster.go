package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"clusterkit.dev/clusterkit"
)

// localCluster is a cluster of service processes on 127.0.0.1.
type localCluster struct {
	dir   string
	procs []*exec.Cmd
	addrs []string
}

// binaries maps a strategy to its service binary.
var binaries = map[string]string{"sync": "kv-sync", "async": "kv-async", "server-side": "kv-server-side"}

// startCluster starts n nodes of bin, all given the same join list, the
// first founding the cluster, and waits until they have converged.
// sec gives the token and TLS files, which env must hold too.
func startCluster(ctx context.Context, bin string, n int, env []string, sec security, log io.Writer) (*localCluster, error) {
	dir, err := os.MkdirTemp("", "loadtest-*")
	if err != nil {
		return nil, err
	}
	c := &localCluster{dir: dir}
	raft := make([]string, n)
	for i := 0; i < n; i++ {
		c.addrs = append(c.addrs, freeAddr())
		raft[i] = freeAddr()
		if c.addrs[i] == "" || raft[i] == "" {
			c.stop()
			return nil, errors.New("no free port on 127.0.0.1")
		}
	}
	for i := 0; i < n; i++ {
		id := localNodeID(i + 1)
		logf, err := os.Create(filepath.Join(dir, id+".log"))
		if err != nil {
			c.stop()
			return nil, err
		}
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), append([]string{
			"NODE_ID=" + id, "HTTP_ADDR=" + c.addrs[i], "RAFT_ADDR=" + raft[i],
			"JOIN_ADDR=" + strings.Join(c.addrs, ","), fmt.Sprintf("BOOTSTRAP=%v", i == 0),
			"DATA_DIR=" + filepath.Join(dir, id),
		}, env...)...)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			logf.Close()
			c.stop()
			return nil, fmt.Errorf("start %s: %w", bin, err)
		}
		logf.Close()
		c.procs = append(c.procs, cmd)
	}
	if err := c.waitConverged(ctx, sec, 60*time.Second); err != nil {
		fmt.Fprintf(log, "cluster logs in %s\n", dir)
		c.procs, c.dir = c.kill(), ""
		return nil, err
	}
	return c, nil
}

// waitConverged waits until every node is healthy with a map known to be
// current, and the first node's map lists every node as an owner with no
// handoff in flight.
func (c *localCluster) waitConverged(ctx context.Context, sec security, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc := sec.client(2 * time.Second)
	var last error
	for {
		if last = c.converged(ctx, hc, sec.scheme()); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster did not converge: %w", last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *localCluster) converged(ctx context.Context, hc *http.Client, scheme string) error {
	for _, a := range c.addrs {
		// Healthy, and its map known to be current: until then a node
		// refuses the KV API (MapLease) even with a leader known.
		var h clusterkit.Health
		if err := getJSON(ctx, hc, scheme+"://"+a+"/health/detailed", &h); err != nil {
			return fmt.Errorf("%s: %w", a, err)
		}
		if h.MapCurrent != nil && !*h.MapCurrent {
			return fmt.Errorf("%s: map not known to be current yet", a)
		}
	}
	var info clusterkit.ClusterInfo
	if err := getJSON(ctx, hc, scheme+"://"+c.addrs[0]+"/cluster", &info); err != nil {
		return err
	}
	owners := map[string]bool{}
	for _, p := range info.Partitions {
		if len(p.JoiningNodes) > 0 {
			return fmt.Errorf("%s: handoff in flight", p.ID)
		}
		owners[p.PrimaryNode] = true
		for _, r := range p.ReplicaNodes {
			owners[r] = true
		}
	}
	if len(info.Nodes) != len(c.addrs) || len(owners) != len(c.addrs) {
		return fmt.Errorf("%d nodes, %d owners", len(info.Nodes), len(owners))
	}
	return nil
}

// waitHealthy waits until every node in addrs answers GET /health with
// 200 (over HTTPS with sec's TLS), for at most timeout; its error names
// the nodes that did not, with the last error of each.
func waitHealthy(ctx context.Context, addrs []string, sec security, timeout time.Duration, log io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc := sec.client(2 * time.Second)
	failed := map[string]error{}
	pending := addrs
	for first := true; ; first = false {
		var next []string
		for _, a := range pending {
			err := getJSON(ctx, hc, sec.scheme()+"://"+a+"/health", nil)
			if err == nil {
				delete(failed, a)
				continue
			}
			next = append(next, a)
			if ctx.Err() == nil || failed[a] == nil {
				failed[a] = err
			}
		}
		if pending = next; len(pending) == 0 {
			return nil
		}
		if first {
			fmt.Fprintf(log, "waiting up to %v for %s to answer GET /health\n", timeout, strings.Join(pending, ", "))
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return ctx.Err()
			}
			var list []string
			for _, a := range pending {
				list = append(list, fmt.Sprintf("%s (%v)", a, failed[a]))
			}
			return fmt.Errorf("no GET /health 200 within %v from %s", timeout, strings.Join(list, ", "))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func getJSON(ctx context.Context, hc *http.Client, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d", url, resp.StatusCode)
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// cpuMeter measures the CPU time of the cluster's processes.
func (c *localCluster) cpuMeter() cpuMeter {
	m := cpuMeter{}
	for _, p := range c.procs {
		m.pids = append(m.pids, p.Process.Pid)
	}
	return m
}

// stop ends the processes (SIGTERM, then SIGKILL after 5s) and removes the
// data.
func (c *localCluster) stop() {
	for _, p := range c.procs {
		_ = p.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range c.procs {
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
	c.procs = nil
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
}

// kill ends the processes at once, keeping their logs.
func (c *localCluster) kill() []*exec.Cmd {
	for _, p := range c.procs {
		_ = p.Process.Kill()
		_ = p.Wait()
	}
	return nil
}

// startEcho runs this binary's echo-server and returns its address.
func startEcho() (*exec.Cmd, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(self, "echo-server", "-addr", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, "", fmt.Errorf("echo server: %w", err)
	}
	return cmd, strings.TrimSpace(line), nil
}

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago,
// from below the kernel's usual ephemeral range (32768-60999), so that the
// source ports of the run's own connections cannot take it before the
// node binds it.
func freeAddr() string {
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr
		}
	}
	return ""
}
