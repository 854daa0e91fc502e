package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"syscall"
)

// run measures, cfg.rounds times over, the echo ceiling and then each
// strategy, in one process and one sitting. Each round holds one result per
// row, the ceiling first, so that a ratio compares a strategy with the
// ceiling measured just before it.
func run(ctx context.Context, cfg config, log io.Writer) ([][]result, error) {
	fmt.Fprintf(log, "mode: %s\n", cfg.mode())
	// Every node given must be up before anything is measured; each
	// measurement checks its own again.
	var given []string
	for _, s := range cfg.strategies {
		given = append(given, cfg.clusters[s]...)
	}
	if err := waitHealthy(ctx, given, cfg.sec, cfg.healthTimeout, log); err != nil {
		return nil, err
	}
	if cfg.echoAddr != "" {
		if err := waitHealthy(ctx, []string{cfg.echoAddr}, security{}, cfg.healthTimeout, log); err != nil {
			return nil, fmt.Errorf("-echo: %w", err)
		}
	}
	prog := newProgress(log, cfg.rounds)
	var rounds [][]result
	for i := range cfg.rounds {
		prog.round = i + 1
		if cfg.rounds > 1 {
			fmt.Fprintf(log, "round %d of %d\n", i+1, cfg.rounds)
		}
		round, err := runRound(ctx, cfg, prog, log)
		// A round cut short by an error is shown only when it is all there
		// is: the table needs every row in every round.
		if len(round) == 1+len(cfg.strategies) || (err != nil && len(rounds) == 0 && len(round) > 0) {
			rounds = append(rounds, round)
		}
		if err != nil {
			return rounds, err
		}
	}
	return rounds, nil
}

// runRound measures the echo ceiling and then each strategy once.
func runRound(ctx context.Context, cfg config, prog *progress, log io.Writer) ([]result, error) {
	r, err := measureCeiling(ctx, cfg, prog, log)
	if err != nil {
		return nil, err
	}
	results := []result{r}
	for _, s := range cfg.strategies {
		r, err := measureStrategy(ctx, cfg, s, prog, log)
		if err != nil {
			return results, fmt.Errorf("%s: %w", s, err)
		}
		results = append(results, r)
	}
	return results, nil
}

// measureCeiling measures the echo server given by -echo, or one started
// for the measurement.
func measureCeiling(ctx context.Context, cfg config, prog *progress, log io.Writer) (result, error) {
	addr, cpu := cfg.echoAddr, cpuMeter{}
	if addr == "" {
		echo, a, err := startEcho()
		if err != nil {
			return result{}, err
		}
		defer func() {
			_ = echo.Process.Signal(syscall.SIGTERM)
			_ = echo.Wait()
		}()
		addr, cpu = a, cpuMeter{pids: []int{echo.Process.Pid}}
	} else if err := waitHealthy(ctx, []string{addr}, security{}, cfg.healthTimeout, log); err != nil {
		return result{}, fmt.Errorf("-echo: %w", err)
	}
	fmt.Fprintf(log, "measuring the echo ceiling at %s\n", addr)
	t := newPlainTarget([]string{addr}, cfg.clients)
	defer t.Close()
	r, err := measure(ctx, "echo (ceiling)", t, cpu, prog, cfg, false)
	if err != nil {
		return result{}, err
	}
	r.Strategy, r.Consistency = "echo", consistency("echo", cfg.ack)
	return r, nil
}

// measureStrategy measures the running cluster of strategy given by
// -cluster, or a local cluster started for the measurement.
func measureStrategy(ctx context.Context, cfg config, strategy string, prog *progress, log io.Writer) (result, error) {
	seeds := cfg.clusters[strategy]
	var cpu cpuMeter // the nodes' CPU time is unknown unless they are local
	if cfg.running() {
		if err := waitHealthy(ctx, seeds, cfg.sec, cfg.healthTimeout, log); err != nil {
			return result{}, err
		}
	} else {
		bin := filepath.Join(cfg.binDir, binaries[strategy])
		var env []string
		if cfg.nodeProcs > 0 {
			env = append(env, fmt.Sprintf("GOMAXPROCS=%d", cfg.nodeProcs))
		}
		if strategy == "server-side" {
			env = append(env, "ACK="+cfg.ack)
		}
		env = append(append(env, cfg.sec.nodeEnv()...), cfg.nodeEnv...)
		fmt.Fprintf(log, "starting %d nodes of %s\n", cfg.nodes, bin)
		c, err := startCluster(ctx, bin, cfg.nodes, env, cfg.sec, log)
		if err != nil {
			return result{}, err
		}
		defer c.stop()
		seeds = c.addrs
		cpu = c.cpuMeter()
	}
	fmt.Fprintf(log, "measuring %s through %v\n", strategy, seeds)
	t, err := newTarget(ctx, strategy, seeds, cfg.clients, cfg.sec)
	if err != nil {
		return result{}, err
	}
	defer t.Close()
	name := "kv-" + strategy
	if strategy == "server-side" {
		name += " (ACK=" + cfg.ack + ")"
	}
	r, err := measure(ctx, name, t, cpu, prog, cfg, true)
	r.Strategy, r.Consistency = strategy, consistency(strategy, cfg.ack)
	return r, err
}

// consistency says what a strategy guarantees, in the words of its
// service's README, for the table: "-" for the echo ceiling.
func consistency(strategy, ack string) string {
	switch strategy {
	case "sync":
		return "linearizable (quorum)"
	case "async":
		return "eventual (acknowledged on the primary)"
	case "server-side":
		if ack == "primary" {
			return "ACK=primary: acknowledged on the primary"
		}
		return "ACK=all: acknowledged on every owner (a majority at least)"
	}
	return "-"
}
