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
	var rounds [][]result
	for i := range cfg.rounds {
		if cfg.rounds > 1 {
			fmt.Fprintf(log, "round %d of %d\n", i+1, cfg.rounds)
		}
		round, err := runRound(ctx, cfg, log)
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
func runRound(ctx context.Context, cfg config, log io.Writer) ([]result, error) {
	var results []result
	echo, addr, err := startEcho()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "measuring the echo ceiling at %s\n", addr)
	t := newPlainTarget([]string{addr}, cfg.clients)
	r, err := measure(ctx, "echo (ceiling)", t, cpuMeter{pids: []int{echo.Process.Pid}}, cfg, false)
	t.Close()
	_ = echo.Process.Signal(syscall.SIGTERM)
	_ = echo.Wait()
	if err != nil {
		return nil, err
	}
	logRates(log, r)
	results = append(results, r)

	for _, s := range cfg.strategies {
		r, err := measureStrategy(ctx, cfg, s, log)
		if err != nil {
			return results, fmt.Errorf("%s: %w", s, err)
		}
		results = append(results, r)
	}
	return results, nil
}

func measureStrategy(ctx context.Context, cfg config, strategy string, log io.Writer) (result, error) {
	seeds := cfg.seeds
	var cpu cpuMeter
	if len(seeds) == 0 {
		bin := filepath.Join(cfg.binDir, binaries[strategy])
		var env []string
		if cfg.nodeProcs > 0 {
			env = append(env, fmt.Sprintf("GOMAXPROCS=%d", cfg.nodeProcs))
		}
		if strategy == "server-side" {
			env = append(env, "ACK="+cfg.ack)
		}
		env = append(env, cfg.nodeEnv...)
		fmt.Fprintf(log, "starting %d nodes of %s\n", cfg.nodes, bin)
		c, err := startCluster(ctx, bin, cfg.nodes, env, log)
		if err != nil {
			return result{}, err
		}
		defer c.stop()
		seeds = c.addrs
		cpu = c.cpuMeter()
	}
	fmt.Fprintf(log, "measuring %s through %v\n", strategy, seeds)
	t, err := newTarget(ctx, strategy, seeds, cfg.clients)
	if err != nil {
		return result{}, err
	}
	defer t.Close()
	name := "kv-" + strategy
	if strategy == "server-side" {
		name += " (ACK=" + cfg.ack + ")"
	}
	r, err := measure(ctx, name, t, cpu, cfg, true)
	if err == nil {
		logRates(log, r)
	}
	return r, err
}

// logRates shows a result's rates as soon as they are measured.
func logRates(log io.Writer, r result) {
	fmt.Fprintf(log, "%s: %.0f writes/s, %.0f reads/s\n", r.Name, r.Write.Rate(), r.Read.Rate())
}
