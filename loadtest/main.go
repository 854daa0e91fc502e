// Command loadtest compares the replication strategies of the three KV
// services under the same load, next to a bare HTTP echo server that marks
// the ceiling of what this machine's HTTP stack can do.
//
// By default it starts, one strategy at a time, a 3-node cluster of each
// service on 127.0.0.1 from the binaries in -bin, writes and then reads
// with -clients concurrent clients for -duration each, stops the cluster,
// and prints one table. With -seeds it runs against a cluster that is
// already up (for example the compose stack) instead.
//
//	make loadtest
//	go run ./loadtest -bin bin -duration 10s
//	go run ./loadtest -strategies async -seeds 127.0.0.1:18080
//	loadtest echo-server -addr 0.0.0.0:8080
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
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
	rounds, err := run(ctx, cfg, os.Stderr)
	if len(rounds) > 0 {
		printTable(os.Stdout, cfg, rounds)
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
	seeds      []string
	nodes      int
	nodeProcs  int // GOMAXPROCS of each node process; 0 leaves Go's default
	clients    int
	valueSize  int
	duration   time.Duration
	warmup     time.Duration
	ack        string
	rounds     int      // times the ceiling and every strategy are measured
	nodeEnv    []string // KEY=VALUE added to every node's environment
}

var allStrategies = []string{"sync", "async", "server-side"}

func parseFlags(args []string, out io.Writer) (config, error) {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(out)
	var c config
	var strategies, seeds, nodeEnv string
	fs.StringVar(&strategies, "strategies", strings.Join(allStrategies, ","), "comma-separated strategies to measure: sync, async, server-side")
	fs.StringVar(&c.binDir, "bin", "bin", "directory with the kv-sync, kv-async and kv-server-side binaries")
	fs.StringVar(&seeds, "seeds", "", "comma-separated HTTP addresses of a running cluster to measure instead of starting one (one strategy only)")
	fs.IntVar(&c.nodes, "nodes", 3, "nodes per cluster")
	fs.IntVar(&c.nodeProcs, "node-procs", -1, "GOMAXPROCS of each node process: its share of the machine's cores (default: cores / nodes, at least 1); 0 leaves Go's default (all cores)")
	fs.IntVar(&c.clients, "clients", 16, "concurrent clients")
	fs.IntVar(&c.valueSize, "value-size", 128, "value size in bytes")
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "length of each write and read phase")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "unmeasured load before each phase")
	fs.StringVar(&c.ack, "ack", "all", "kv-server-side ACK mode: all or primary")
	fs.StringVar(&nodeEnv, "node-env", "", "comma-separated KEY=VALUE settings added to every node's environment, for example FSYNC=false")
	fs.IntVar(&c.rounds, "rounds", 3, "times the ceiling and every strategy are measured, in turn; the table gives the round with the median ratio")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	for _, s := range strings.Split(strategies, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !contains(allStrategies, s) {
			return c, fmt.Errorf("-strategies: unknown strategy %q (want %s)", s, strings.Join(allStrategies, ", "))
		}
		c.strategies = append(c.strategies, s)
	}
	for _, s := range strings.Split(seeds, ",") {
		if s = strings.TrimSpace(s); s != "" {
			c.seeds = append(c.seeds, s)
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
	switch {
	case len(c.strategies) == 0:
		return c, errors.New("-strategies: none given")
	case len(c.seeds) > 0 && len(c.strategies) != 1:
		return c, errors.New("-seeds: measure one strategy at a time against a running cluster")
	case len(c.seeds) > 0 && len(c.nodeEnv) > 0:
		return c, errors.New("-node-env: the nodes of a running cluster (-seeds) keep their environment")
	case c.nodes < 1:
		return c, fmt.Errorf("-nodes: %d must be at least 1", c.nodes)
	case c.nodeProcs < -1:
		return c, fmt.Errorf("-node-procs: %d must not be negative", c.nodeProcs)
	case c.clients < 1:
		return c, fmt.Errorf("-clients: %d must be at least 1", c.clients)
	case c.valueSize < 1 || c.valueSize > 1<<20:
		return c, fmt.Errorf("-value-size: %d must be 1 to 1048576", c.valueSize)
	case c.duration <= 0:
		return c, fmt.Errorf("-duration: %v must be positive", c.duration)
	case c.warmup < 0:
		return c, fmt.Errorf("-warmup: %v must not be negative", c.warmup)
	case c.rounds < 1:
		return c, fmt.Errorf("-rounds: %d must be at least 1", c.rounds)
	case c.ack != "all" && c.ack != "primary":
		return c, fmt.Errorf("-ack: %q must be all or primary", c.ack)
	}
	if c.nodeProcs == -1 {
		c.nodeProcs = max(1, runtime.NumCPU()/c.nodes)
	}
	return c, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
