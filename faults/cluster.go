package faults

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"clusterkit.dev/clusterkit"
)

// Strategy is one of the three services.
type Strategy struct {
	Name    string // sync, async, server-side
	Service string // its command: kv-sync, ...
	// Linearizable: every key's history must be linearizable, which
	// covers "no acknowledged write is lost".
	Linearizable bool
	// PrimaryOnly: requests must reach the key's primary (the others
	// take a request on any node).
	PrimaryOnly bool
}

// Strategies are the services the suite runs, in the order it runs them.
var Strategies = []Strategy{
	{Name: "sync", Service: "kv-sync", Linearizable: true},
	{Name: "server-side", Service: "kv-server-side", Linearizable: true},
	{Name: "async", Service: "kv-async", PrimaryOnly: true},
}

// ClusterConfig is how a cluster is laid out.
type ClusterConfig struct {
	Strategy   Strategy
	Bin        string // the service's command
	Dir        string // data dirs and logs go under it
	Nodes      int    // nodes that form the cluster
	Partitions int
	// DiskMiB is the size of each node's data dir, a tmpfs of its own, so
	// that a disk-full fault fills one node's disk only.
	DiskMiB int
	Env     []string // added to every node's environment
	NetID   int      // Network id
}

// Cluster is a running cluster of one service, one node per host.
type Cluster struct {
	cfg   ClusterConfig
	Net   *Network
	hc    *http.Client
	joins string

	mu     sync.Mutex
	nodes  []*Node
	mounts []string
}

// StartCluster builds the network, starts cfg.Nodes nodes that form a
// cluster by BOOTSTRAP_EXPECT, and waits until it is ready (every node
// sees every node, every partition has a primary and its replicas).
// Close stops everything it started, whatever happened.
func StartCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	nw, err := NewNetwork(cfg.NetID)
	if err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, Net: nw, hc: &http.Client{Timeout: 2 * time.Second}}
	var addrs []string
	for k := 1; k <= cfg.Nodes; k++ {
		addrs = append(addrs, fmt.Sprintf("%s.%d:8080", nw.subnet, k))
	}
	c.joins = strings.Join(addrs, ",")
	for range cfg.Nodes {
		if _, err := c.addNode(fmt.Sprintf("BOOTSTRAP_EXPECT=%d", cfg.Nodes)); err != nil {
			return c, err
		}
	}
	return c, c.WaitReady(ctx, cfg.Nodes)
}

// addNode makes a host and starts a node on it.
func (c *Cluster) addNode(env ...string) (*Node, error) {
	h, err := c.Net.AddHost()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	k := len(c.nodes) + 1
	c.mu.Unlock()
	n := &Node{ID: fmt.Sprintf("n%d", k), Host: h, HTTP: h.IP + ":8080", bin: c.cfg.Bin}
	n.DataDir = filepath.Join(c.cfg.Dir, n.ID)
	n.LogPath = filepath.Join(c.cfg.Dir, n.ID+".log")
	if err := os.MkdirAll(n.DataDir, 0o755); err != nil {
		return nil, err
	}
	if c.cfg.DiskMiB > 0 {
		if err := run("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm", c.cfg.DiskMiB), "tmpfs", n.DataDir); err != nil {
			return nil, err
		}
		c.mu.Lock()
		c.mounts = append(c.mounts, n.DataDir)
		c.mu.Unlock()
	}
	n.env = append([]string{
		"NODE_ID=" + n.ID,
		"HTTP_ADDR=" + n.HTTP, "HTTP_ADVERTISE=" + n.HTTP,
		"RAFT_ADDR=" + h.IP + ":7000", "RAFT_ADVERTISE=" + h.IP + ":7000",
		"JOIN_ADDR=" + c.joins,
		"DATA_DIR=" + n.DataDir,
		fmt.Sprintf("PARTITION_COUNT=%d", c.cfg.Partitions),
		"LOG_LEVEL=warn",
	}, append(slices.Clone(c.cfg.Env), env...)...)
	c.mu.Lock()
	c.nodes = append(c.nodes, n)
	c.mu.Unlock()
	return n, n.Start()
}

// AddNode starts one more node, which joins the running cluster.
func (c *Cluster) AddNode() (*Node, error) { return c.addNode() }

// Nodes returns the cluster's nodes, in the order they were added.
func (c *Cluster) Nodes() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.nodes)
}

// Node returns the node with the given ID, or nil.
func (c *Cluster) Node(id string) *Node {
	for _, n := range c.Nodes() {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// Map fetches n's map.
func (c *Cluster) Map(ctx context.Context, n *Node) (*clusterkit.ClusterInfo, error) {
	var m clusterkit.ClusterInfo
	if err := c.getJSON(ctx, n, "/cluster", &m); err != nil {
		return nil, err
	}
	return &m, nil
}

func (c *Cluster) getJSON(ctx context.Context, n *Node, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.HTTP+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &statusError{code: resp.StatusCode, msg: fmt.Sprintf("%s: GET %s: %s", n.ID, path, resp.Status)}
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// statusError is an answer other than 200.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

// NewestMap returns the newest map among the running nodes that answer.
func (c *Cluster) NewestMap(ctx context.Context) (*clusterkit.ClusterInfo, error) {
	var best *clusterkit.ClusterInfo
	var errs []error
	for _, n := range c.Nodes() {
		if !n.Running() {
			continue
		}
		m, err := c.Map(ctx, n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if best == nil || m.Version > best.Version {
			best = m
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no node answered: %w", errors.Join(errs...))
	}
	return best, nil
}

// Drain asks the cluster, through node via, to drain id.
func (c *Cluster) Drain(ctx context.Context, via *Node, id string) error {
	body, _ := json.Marshal(map[string]any{"id": id})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+via.HTTP+"/cluster/drain", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("drain %s via %s: %s", id, via.ID, resp.Status)
	}
	return nil
}

// WaitReady waits until every running node's map has the same version,
// holds want alive nodes, and gives every partition a primary and its
// replicas with none joining.
func (c *Cluster) WaitReady(ctx context.Context, want int) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var last error
	for {
		if last = c.ready(ctx, want); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster not ready: %w", last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (c *Cluster) ready(ctx context.Context, want int) error {
	var version uint64
	for _, n := range c.Nodes() {
		if !n.Running() {
			continue
		}
		m, err := c.Map(ctx, n)
		if err != nil {
			return err
		}
		alive := 0
		for _, node := range m.Nodes {
			if node.State == clusterkit.NodeAlive {
				alive++
			}
		}
		if alive != want || len(m.Partitions) == 0 {
			return fmt.Errorf("%s sees %d alive nodes of %d, %d partitions", n.ID, alive, want, len(m.Partitions))
		}
		if version != 0 && m.Version != version {
			return fmt.Errorf("%s has map version %d, another node %d", n.ID, m.Version, version)
		}
		version = m.Version
		for _, p := range m.Partitions {
			if p.PrimaryNode == "" || len(p.ReplicaNodes) != m.ReplicationFactor-1 || len(p.JoiningNodes) > 0 {
				return fmt.Errorf("%s: %s is %q+%v, joining %v", n.ID, p.ID, p.PrimaryNode, p.ReplicaNodes, p.JoiningNodes)
			}
		}
	}
	return nil
}

// Close kills every node, removes the tmpfs mounts and the network.
func (c *Cluster) Close() error {
	var errs []error
	for _, n := range c.Nodes() {
		errs = append(errs, n.Kill())
	}
	c.mu.Lock()
	mounts := c.mounts
	c.mounts = nil
	c.mu.Unlock()
	for _, m := range mounts {
		errs = append(errs, run("umount", m))
	}
	errs = append(errs, c.Net.Close())
	c.hc.CloseIdleConnections()
	return errors.Join(errs...)
}

// Counter returns the value of the counter named name (a metric without
// labels) that node n exports on /metrics.
func (c *Cluster) Counter(ctx context.Context, n *Node, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.HTTP+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: GET /metrics: %s", n.ID, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: /metrics has no %s", n.ID, name)
}
