// Package cktest starts real ClusterKit clusters inside a test: raft over
// TCP on 127.0.0.1, bbolt files under t.TempDir(), real HTTP servers. It is
// for the tests of the library and of applications built on it.
//
//	c := cktest.New(t, 3)
//	c.WaitConverged()
//	p, _ := c.Member(0).CK.GetPartition("user:1")
package cktest

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
)

// Cluster is a set of in-process nodes owned by one test.
type Cluster struct {
	t    testing.TB
	opts settings

	mu      sync.Mutex
	members []*Member
}

// Member is one node of a Cluster. CK is nil while the member is stopped.
type Member struct {
	Index   int
	ID      string
	Options clusterkit.Options
	CK      *clusterkit.ClusterKit
	// Init, if set, runs on every new ClusterKit of the member before its
	// Start: the place to register hooks.
	Init func(ck *clusterkit.ClusterKit)

	ran bool // started successfully at least once
}

// HTTPAddr returns the member's dialable HTTP address.
func (m *Member) HTTPAddr() string { return m.Options.HTTPAdvertise }

// URL returns http://<HTTPAddr><path>, https:// with TLS.
func (m *Member) URL(path string) string {
	if m.Options.TLS != nil {
		return "https://" + m.HTTPAddr() + path
	}
	return "http://" + m.HTTPAddr() + path
}

type settings struct {
	config     clusterkit.Config
	init       func(m *Member, ck *clusterkit.ClusterKit)
	setup      func(i int, o *clusterkit.Options)
	sequential bool
	timeout    time.Duration
	logLevel   slog.Level
}

// Option changes how New builds the cluster.
type Option func(*settings)

// WithConfig sets every node's Config (default clusterkit.LocalConfig()).
func WithConfig(c clusterkit.Config) Option { return func(s *settings) { s.config = c } }

// WithSetup lets the test change each node's Options before it starts,
// for example to register hooks (use Setup for those) or set Zone and Meta.
// Several run in the order given.
func WithSetup(fn func(i int, o *clusterkit.Options)) Option {
	return func(s *settings) {
		prev := s.setup
		s.setup = func(i int, o *clusterkit.Options) {
			if prev != nil {
				prev(i, o)
			}
			fn(i, o)
		}
	}
}

// WithInit runs fn on every new ClusterKit of every member before its
// Start: the place to register hooks that must see every change.
func WithInit(fn func(m *Member, ck *clusterkit.ClusterKit)) Option {
	return func(s *settings) { s.init = fn }
}

// Sequential starts the nodes one after another instead of all at once.
func Sequential() Option { return func(s *settings) { s.sequential = true } }

// WithTimeout bounds each wait of the harness (default 30s).
func WithTimeout(d time.Duration) Option { return func(s *settings) { s.timeout = d } }

// New starts n nodes, all given the same join list (every node's address)
// and node-1 founding the cluster, and waits until all of them are members. The cluster is stopped when the test ends.
func New(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	c := NewStopped(t, n, opts...)
	c.StartAll()
	return c
}

// NewStopped prepares n members without starting them; call StartAll, or
// Start on each (the first must start first or together with the others).
func NewStopped(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	s := settings{config: clusterkit.LocalConfig(), timeout: 30 * time.Second, logLevel: slog.LevelWarn}
	if os.Getenv("CKTEST_LOG") == "debug" {
		s.logLevel = slog.LevelDebug
	}
	for _, o := range opts {
		o(&s)
	}
	c := &Cluster{t: t, opts: s}
	for i := 0; i < n; i++ {
		c.members = append(c.members, c.newMember(i))
	}
	joins := make([]string, n)
	for i, m := range c.members {
		joins[i] = m.Options.HTTPAdvertise
	}
	// Every member gets the same join list, as in a compose file; the
	// first also founds the cluster (a node ignores its own address).
	for i, m := range c.members {
		m.Options.JoinAddr = strings.Join(joins, ",")
		m.Options.Bootstrap = i == 0
	}
	t.Cleanup(c.StopAll)
	return c
}

func (c *Cluster) newMember(i int) *Member {
	id := fmt.Sprintf("node-%d", i+1)
	httpPort, raftPort := freePort(c.t), freePort(c.t)
	cfg := c.opts.config
	o := clusterkit.Options{
		NodeID:        id,
		HTTPAddr:      fmt.Sprintf("127.0.0.1:%d", httpPort),
		HTTPAdvertise: fmt.Sprintf("127.0.0.1:%d", httpPort),
		RaftAddr:      fmt.Sprintf("127.0.0.1:%d", raftPort),
		DataDir:       filepath.Join(c.t.TempDir(), id),
		Config:        &cfg,
		Logger:        slog.New(slog.NewTextHandler(&testWriter{t: c.t}, &slog.HandlerOptions{Level: c.opts.logLevel})),
	}
	if c.opts.setup != nil {
		c.opts.setup(i, &o)
	}
	return &Member{Index: i, ID: id, Options: o}
}

// StartAll starts every stopped member: all at once, or in order with
// Sequential. It fails the test if one does not start.
func (c *Cluster) StartAll() {
	c.t.Helper()
	ms := c.Members()
	if c.opts.sequential {
		for _, m := range ms {
			c.Start(m.Index)
		}
		return
	}
	errs := make([]error, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		if m.CK != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.start(m)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			c.t.Fatalf("start %s: %v", ms[i].ID, err)
		}
	}
}

// Start (re)starts member i from its DataDir.
func (c *Cluster) Start(i int) *Member {
	c.t.Helper()
	m := c.Member(i)
	if err := c.start(m); err != nil {
		c.t.Fatalf("start %s: %v", m.ID, err)
	}
	return m
}

func (c *Cluster) start(m *Member) error {
	err := c.startOnce(m)
	// A port picked free may be taken by the time the node binds it. A
	// member that never ran may move to other ports; one that ran keeps
	// its addresses, which the cluster knows.
	for try := 0; try < 3 && errors.Is(err, syscall.EADDRINUSE) && !m.ran; try++ {
		httpPort, raftPort := freePort(c.t), freePort(c.t)
		m.Options.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", httpPort)
		m.Options.HTTPAdvertise = m.Options.HTTPAddr
		m.Options.RaftAddr = fmt.Sprintf("127.0.0.1:%d", raftPort)
		err = c.startOnce(m)
	}
	if err == nil {
		m.ran = true
	}
	return err
}

func (c *Cluster) startOnce(m *Member) error {
	ck, err := clusterkit.NewClusterKit(m.Options)
	if err != nil {
		return err
	}
	if c.opts.init != nil {
		c.opts.init(m, ck)
	}
	if m.Init != nil {
		m.Init(ck)
	}
	c.mu.Lock()
	m.CK = ck
	c.mu.Unlock()
	if err := ck.Start(); err != nil {
		c.mu.Lock()
		m.CK = nil
		c.mu.Unlock()
		return err
	}
	return nil
}

// Stop stops member i without leaving (the others see it as unreachable).
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	m := c.Member(i)
	c.mu.Lock()
	ck := m.CK
	m.CK = nil
	c.mu.Unlock()
	if ck == nil {
		return
	}
	if err := ck.Stop(); err != nil {
		c.t.Logf("stop %s: %v", m.ID, err)
	}
}

// Restart stops and starts member i.
func (c *Cluster) Restart(i int) *Member {
	c.t.Helper()
	c.Stop(i)
	return c.Start(i)
}

// StopAll stops every member; New registers it with t.Cleanup.
func (c *Cluster) StopAll() {
	var wg sync.WaitGroup
	for _, m := range c.Members() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Stop(m.Index)
		}()
	}
	wg.Wait()
}

// Add prepares and starts a new member that joins through the existing
// members, and returns it. prepare may change the member's Options and set
// its Init before it starts.
func (c *Cluster) Add(prepare ...func(m *Member)) *Member {
	c.t.Helper()
	c.mu.Lock()
	m := c.newMember(len(c.members))
	var joins []string
	for _, o := range c.members {
		joins = append(joins, o.Options.HTTPAdvertise)
	}
	m.Options.JoinAddr = strings.Join(joins, ",")
	c.members = append(c.members, m)
	c.mu.Unlock()
	for _, fn := range prepare {
		fn(m)
	}
	return c.Start(m.Index)
}

// Member returns member i.
func (c *Cluster) Member(i int) *Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.members[i]
}

// Members returns all members, started or not.
func (c *Cluster) Members() []*Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Member(nil), c.members...)
}

// Running returns the started members.
func (c *Cluster) Running() []*Member {
	var out []*Member
	for _, m := range c.Members() {
		if c.ck(m) != nil {
			out = append(out, m)
		}
	}
	return out
}

func (c *Cluster) ck(m *Member) *clusterkit.ClusterKit {
	c.mu.Lock()
	defer c.mu.Unlock()
	return m.CK
}

// CK returns member i's running ClusterKit, or nil while it is stopped.
// Unlike reading Member.CK, it is safe while other goroutines stop and
// start members.
func (c *Cluster) CK(i int) *clusterkit.ClusterKit {
	return c.ck(c.Member(i))
}

// FreeAddr returns a 127.0.0.1 address whose port was free a moment ago,
// chosen as the harness chooses its nodes' ports, for tests that start
// nodes of their own.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", freePort(t))
}

// handedOut holds the ports freePort returned in this process: ports are a
// resource of the whole process, and a port handed out but not bound yet
// (the node starts later) would pass the check again.
var handedOut struct {
	sync.Mutex
	ports map[int]bool
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// that it has not returned before. It picks from below the kernel's usual
// ephemeral range (32768-60999), where the source ports of outgoing
// connections come from, so that the many connections of a test run cannot
// take the port before the node binds it.
func freePort(t testing.TB) int {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports == nil {
		handedOut.ports = map[int]bool{}
	}
	for range 100 {
		port := 20000 + rand.IntN(12000)
		if handedOut.ports[port] {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		ln.Close()
		handedOut.ports[port] = true
		return port
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// testWriter sends log lines to t.Log, so they show only when a test fails
// or with -v; lines written after the test ended are dropped.
type testWriter struct {
	t testing.TB
}

func (w *testWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // the test may have ended
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
