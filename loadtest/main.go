// Command loadtest compares the replication strategies of the three KV
// services under the same load, next to a bare HTTP echo server that marks
// the ceiling of what this machine's HTTP stack can do.
//
// By default it starts, one strategy at a time, a 3-node cluster of each
// service on 127.0.0.1 from the binaries in -bin, writes and then reads
// with -clients concurrent clients for -duration each, stops the cluster,
// and prints one table. With -cluster it measures clusters that are
// already up (for example the compose stack) instead, and with -echo an
// echo server that is already up.
//
//	make loadtest
//	go run ./loadtest -bin bin -duration 10s
//	go run ./loadtest -cluster async=127.0.0.1:18080,127.0.0.1:18081 -echo 127.0.0.1:18000
//	loadtest echo-server -addr 0.0.0.0:8080
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "echo-server":
			if err := runEchoServer(os.Args[2:]); err != nil {
				fmt.Fprintln(os.Stderr, "loadtest echo-server:", err)
				os.Exit(1)
			}
			return
		case "healthcheck":
			os.Exit(healthcheck(os.Args[2:]))
		}
	}
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	started := time.Now()
	rounds, err := run(ctx, cfg, os.Stderr)
	if len(rounds) > 0 {
		printTable(os.Stdout, cfg, rounds)
		if cfg.jsonPath != "" {
			if jerr := writeJSON(cfg.jsonPath, newReport(cfg, started, rounds)); jerr != nil {
				err = errors.Join(err, fmt.Errorf("-json: %w", jerr))
			} else {
				fmt.Fprintf(os.Stderr, "figures of every round in %s\n", cfg.jsonPath)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// config is what one run measures.
type config struct {
	strategies []string
	binDir     string
	// clusters holds the nodes of each running cluster to measure, by
	// strategy; when empty, a local cluster of each strategy is started.
	clusters  map[string][]string
	echoAddr  string // a running echo server; "" starts a local one
	nodes     int
	nodeProcs int // GOMAXPROCS of each node process; 0 leaves Go's default
	clients   int
	valueSize int
	// keys is the size of the key space; 0 gives every write a key of its
	// own.
	keys int
	// mixed adds a phase of reads and writes after the write and read
	// phases, mix of its operations reads.
	mixed    bool
	mix      float64
	duration time.Duration
	warmup   time.Duration
	ack      string
	rounds   int      // times the ceiling and every strategy are measured
	nodeEnv  []string // KEY=VALUE added to every node's environment
	sec      security // the cluster token and TLS (-token, -tls-dir)
	jsonPath string   // where to write every figure of every round; "" for nowhere
	// healthTimeout bounds the wait for the nodes of a running cluster,
	// and a running echo server, to answer GET /health.
	healthTimeout time.Duration
}

var allStrategies = []string{"sync", "async", "server-side"}

// maxKeys bounds -keys: the run keeps one bit per key of the space.
const maxKeys = 100_000_000

// listFlag is a flag that may be given several times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func parseFlags(args []string, out io.Writer) (config, error) {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(out)
	c := config{healthTimeout: 60 * time.Second}
	var strategies, seeds, nodeEnv, mix string
	var clusters listFlag
	fs.StringVar(&strategies, "strategies", strings.Join(allStrategies, ","), "comma-separated strategies to measure: sync, async, server-side (with -cluster: which of the running clusters)")
	fs.StringVar(&c.binDir, "bin", "bin", "directory with the kv-sync, kv-async and kv-server-side binaries")
	fs.Var(&clusters, "cluster", "a running cluster to measure instead of starting one, as `STRATEGY=ADDR[,ADDR...]` with every node's HTTP address; repeat it for each strategy")
	fs.StringVar(&seeds, "seeds", "", "comma-separated HTTP addresses of a running cluster of the one strategy in -strategies: the same as -cluster STRATEGY=ADDRS")
	fs.StringVar(&c.echoAddr, "echo", "", "HTTP `address` of a running echo server (loadtest echo-server) to measure the ceiling against, instead of starting one")
	fs.IntVar(&c.nodes, "nodes", 3, "nodes per local cluster")
	fs.IntVar(&c.nodeProcs, "node-procs", -1, "GOMAXPROCS of each local node process: its share of the machine's cores (default: cores / nodes, at least 1); 0 leaves Go's default (all cores)")
	fs.IntVar(&c.clients, "clients", 16, "concurrent clients")
	fs.IntVar(&c.valueSize, "value-size", 128, "value size in bytes")
	fs.IntVar(&c.keys, "keys", 0, fmt.Sprintf("size of the key space: writes choose among `N` keys at random, reads among those written; 0 gives every write a new key (at most %d)", maxKeys))
	fs.StringVar(&mix, "mix", "", "adds a phase of reads and writes after the write and read phases, `R` (0 to 1) of its operations reads (default: no such phase)")
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "length of each measured phase")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "unmeasured load before each phase")
	fs.StringVar(&c.ack, "ack", "all", "kv-server-side ACK mode: all or primary (for a running cluster: the mode its nodes run with, for the table)")
	fs.StringVar(&nodeEnv, "node-env", "", "comma-separated KEY=VALUE settings added to every local node's environment, for example FSYNC=false")
	fs.StringVar(&c.sec.token, "token", "", "the cluster `TOKEN`: local nodes are started with it (CLUSTER_TOKEN) and the clients send it (kv-sync and kv-async)")
	fs.StringVar(&c.sec.tlsDir, "tls-dir", "", "TLS files as make certs writes them, in `DIR`: the clients speak HTTPS and verify the nodes with DIR/ca.pem; local nodes are started with TLS_DIR=DIR, so it must hold node-1.pem, node-1-key.pem ... (kv-sync and kv-async)")
	fs.IntVar(&c.rounds, "rounds", 3, "times the ceiling and every strategy are measured, in turn; the table gives the round with the median ratio")
	fs.StringVar(&c.jsonPath, "json", "", "write every figure of every round, and the configuration, to `FILE` as JSON")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var chosen []string
	for _, s := range strings.Split(strategies, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !contains(allStrategies, s) {
			return c, fmt.Errorf("-strategies: unknown strategy %q (want %s)", s, strings.Join(allStrategies, ", "))
		}
		chosen = append(chosen, s)
	}
	if len(chosen) == 0 {
		return c, errors.New("-strategies: none given")
	}
	var err error
	if c.clusters, err = parseClusters(clusters); err != nil {
		return c, err
	}
	if seedList := splitList(seeds); len(seedList) > 0 {
		switch {
		case len(c.clusters) > 0:
			return c, errors.New("-seeds: give running clusters with -cluster only")
		case len(chosen) != 1:
			return c, errors.New("-seeds: measure one strategy (-strategies) against a running cluster, or use -cluster")
		}
		if err := checkAddrs(seedList); err != nil {
			return c, fmt.Errorf("-seeds: %w", err)
		}
		c.clusters = map[string][]string{chosen[0]: seedList}
	}
	if len(c.clusters) == 0 {
		c.strategies = chosen
	} else {
		// The running clusters are measured, in the usual order; an
		// explicit -strategies picks among them.
		for _, s := range allStrategies {
			if _, ok := c.clusters[s]; ok && (!set["strategies"] || contains(chosen, s)) {
				c.strategies = append(c.strategies, s)
			}
		}
		for _, s := range chosen {
			if _, ok := c.clusters[s]; set["strategies"] && !ok {
				return c, fmt.Errorf("-strategies: no running cluster (-cluster) of %s", s)
			}
		}
		for _, name := range []string{"nodes", "node-procs"} {
			if set[name] {
				return c, fmt.Errorf("-%s: applies to local clusters only, not to running ones (-cluster)", name)
			}
		}
	}
	if c.echoAddr != "" {
		if err := checkAddrs([]string{c.echoAddr}); err != nil {
			return c, fmt.Errorf("-echo: %w", err)
		}
	}
	for _, kv := range strings.Split(nodeEnv, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return c, fmt.Errorf("-node-env: %q is not KEY=VALUE", kv)
		}
		c.nodeEnv = append(c.nodeEnv, kv)
	}
	if set["mix"] {
		f, err := strconv.ParseFloat(strings.TrimSpace(mix), 64)
		if err != nil || math.IsNaN(f) || f < 0 || f > 1 {
			return c, fmt.Errorf("-mix: %q must be a fraction of reads from 0 to 1", mix)
		}
		c.mixed, c.mix = true, f
	}
	switch {
	case len(c.clusters) > 0 && len(c.nodeEnv) > 0:
		return c, errors.New("-node-env: the nodes of a running cluster (-cluster) keep their environment")
	case c.nodes < 1:
		return c, fmt.Errorf("-nodes: %d must be at least 1", c.nodes)
	case c.nodeProcs < -1:
		return c, fmt.Errorf("-node-procs: %d must not be negative", c.nodeProcs)
	case c.clients < 1:
		return c, fmt.Errorf("-clients: %d must be at least 1", c.clients)
	case c.valueSize < 1 || c.valueSize > 1<<20:
		return c, fmt.Errorf("-value-size: %d must be 1 to 1048576", c.valueSize)
	case c.keys < 0 || c.keys > maxKeys:
		return c, fmt.Errorf("-keys: %d must be 0 (a new key per write) to %d", c.keys, maxKeys)
	case c.duration <= 0:
		return c, fmt.Errorf("-duration: %v must be positive", c.duration)
	case c.warmup < 0:
		return c, fmt.Errorf("-warmup: %v must not be negative", c.warmup)
	case c.rounds < 1:
		return c, fmt.Errorf("-rounds: %d must be at least 1", c.rounds)
	case c.ack != "all" && c.ack != "primary":
		return c, fmt.Errorf("-ack: %q must be all or primary", c.ack)
	case set["json"] && c.jsonPath == "":
		return c, errors.New("-json: no file given")
	}
	if c.jsonPath != "" {
		if fi, err := os.Stat(filepath.Dir(c.jsonPath)); err != nil || !fi.IsDir() {
			return c, fmt.Errorf("-json: %s: no such directory", filepath.Dir(c.jsonPath))
		}
	}
	if err := c.sec.check(c.strategies, !c.running(), c.nodes); err != nil {
		return c, err
	}
	if c.nodeProcs == -1 {
		c.nodeProcs = max(1, runtime.NumCPU()/c.nodes)
	}
	return c, nil
}

// parseClusters reads the -cluster flags: STRATEGY=ADDR[,ADDR...] each,
// one per strategy.
func parseClusters(flags []string) (map[string][]string, error) {
	clusters := map[string][]string{}
	for _, f := range flags {
		s, addrs, ok := strings.Cut(f, "=")
		s = strings.TrimSpace(s)
		if !ok || s == "" {
			return nil, fmt.Errorf("-cluster: %q is not STRATEGY=ADDR[,ADDR...]", f)
		}
		if !contains(allStrategies, s) {
			return nil, fmt.Errorf("-cluster: unknown strategy %q (want %s)", s, strings.Join(allStrategies, ", "))
		}
		if _, dup := clusters[s]; dup {
			return nil, fmt.Errorf("-cluster: %s given twice", s)
		}
		list := splitList(addrs)
		if len(list) == 0 {
			return nil, fmt.Errorf("-cluster: %s: no address", s)
		}
		if err := checkAddrs(list); err != nil {
			return nil, fmt.Errorf("-cluster: %s: %w", s, err)
		}
		clusters[s] = list
	}
	return clusters, nil
}

// checkAddrs checks that every address is HOST:PORT, with no repeats.
func checkAddrs(addrs []string) error {
	for i, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" || port == "" {
			return fmt.Errorf("%q is not HOST:PORT", a)
		}
		if slices.Contains(addrs[:i], a) {
			return fmt.Errorf("%s given twice", a)
		}
	}
	return nil
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var list []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			list = append(list, x)
		}
	}
	return list
}

// running reports whether the strategies are measured on running clusters.
func (c config) running() bool { return len(c.clusters) > 0 }

// mode says in one line where the clusters and the ceiling come from.
func (c config) mode() string { return c.describe(false) }

// describe is mode, with the local nodes' GOMAXPROCS when procs is set.
func (c config) describe(procs bool) string {
	var b strings.Builder
	if c.running() {
		b.WriteString("running clusters (")
		for i, s := range c.strategies {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s: %s", s, nodes(len(c.clusters[s])))
		}
		b.WriteString(")")
	} else {
		fmt.Fprintf(&b, "local %d-node clusters of processes from %s/", c.nodes, strings.TrimSuffix(c.binDir, "/"))
		if procs && c.nodeProcs > 0 {
			fmt.Fprintf(&b, " (GOMAXPROCS=%d per node)", c.nodeProcs)
		} else if procs {
			b.WriteString(" (Go's default GOMAXPROCS)")
		}
	}
	if sec := c.sec.describe(); sec != "" {
		fmt.Fprintf(&b, ", with the %s", sec)
	}
	if c.echoAddr != "" {
		fmt.Fprintf(&b, ", ceiling from %s", c.echoAddr)
	} else {
		b.WriteString(", ceiling from a local echo server")
	}
	return b.String()
}

// nodes counts nodes: "1 node", "3 nodes".
func nodes(n int) string {
	if n == 1 {
		return "1 node"
	}
	return fmt.Sprintf("%d nodes", n)
}

// nodesOf returns the number of nodes of a strategy's cluster.
func (c config) nodesOf(strategy string) int {
	if c.running() {
		return len(c.clusters[strategy])
	}
	return c.nodes
}

func contains(list []string, s string) bool {
	return slices.Contains(list, s)
}
