package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// target is one strategy's way of writing and reading a key.
type target interface {
	Set(ctx context.Context, key, value string) error
	Get(ctx context.Context, key string) (string, error)
	Close() error
}

// phase is the outcome of one measured phase.
type phase struct {
	Ops     int
	Errors  int
	Elapsed time.Duration
	P50     time.Duration
	P99     time.Duration
	// FirstErr is the first error seen, if any.
	FirstErr error
	// ServerCPU and ClientCPU are the CPU time the servers and this
	// process used while the phase was measured; ServerCPU is negative
	// when unknown.
	ServerCPU, ClientCPU time.Duration
}

// CPUPerOp returns the servers' and the client's CPU time per operation,
// the servers' negative when unknown.
func (p phase) CPUPerOp() (servers, client time.Duration) {
	if p.Ops == 0 {
		return -1, -1
	}
	servers = -1
	if p.ServerCPU >= 0 {
		servers = p.ServerCPU / time.Duration(p.Ops)
	}
	return servers, p.ClientCPU / time.Duration(p.Ops)
}

// Rate is operations per second.
func (p phase) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Ops) / p.Elapsed.Seconds()
}

// result is one row of a round: the ceiling's or a strategy's phases.
type result struct {
	Name string
	// Strategy is the strategy measured, "echo" for the ceiling.
	Strategy string
	// Consistency is what the strategy guarantees to a reader, in the
	// words of its service's README; "-" for the ceiling.
	Consistency  string
	Write, Read  phase
	Unverifiable bool // reads of the echo server return no stored value
}

// measure writes with cfg.clients workers for cfg.duration, then reads back
// keys that were written, checking every value. prog, if not nil, shows
// how each phase goes.
func measure(ctx context.Context, name string, t target, cpu cpuMeter, prog *progress, cfg config, verify bool) (result, error) {
	value := strings.Repeat("v", cfg.valueSize)
	written := make([]int, cfg.clients) // keys written by each worker
	write := runPhase(ctx, cfg, cpu, prog.phase(name, "write"), func(ctx context.Context, w int, _ *rand.Rand) error {
		err := t.Set(ctx, key(w, written[w]), value)
		if err == nil {
			written[w]++
		}
		return err
	})
	if ctx.Err() != nil {
		return result{}, ctx.Err()
	}
	read := runPhase(ctx, cfg, cpu, prog.phase(name, "read"), func(ctx context.Context, w int, rng *rand.Rand) error {
		if written[w] == 0 {
			return fmt.Errorf("worker %d wrote nothing to read", w)
		}
		k := key(w, rng.IntN(written[w]))
		got, err := t.Get(ctx, k)
		if err != nil {
			return err
		}
		if verify && got != value {
			return fmt.Errorf("read %s: got %d bytes, want the %d written", k, len(got), len(value))
		}
		return nil
	})
	return result{Name: name, Write: write, Read: read, Unverifiable: !verify}, ctx.Err()
}

func key(worker, n int) string { return fmt.Sprintf("lt-%02d-%08d", worker, n) }

// runPhase runs op on cfg.clients workers for warmup + duration and
// measures the duration part, and the CPU time used during it; track, if
// not nil, is told of every measured operation as it ends.
func runPhase(ctx context.Context, cfg config, cpu cpuMeter, track *phaseTracker, op func(ctx context.Context, worker int, rng *rand.Rand) error) phase {
	start := time.Now()
	measureFrom := start.Add(cfg.warmup)
	end := measureFrom.Add(cfg.duration)
	track.start(measureFrom, cfg.duration)
	ctx, cancel := context.WithDeadline(ctx, end.Add(5*time.Second))
	defer cancel()

	var cpuFrom, cpuTo cpuSample
	cpuDone := make(chan struct{})
	go func() {
		defer close(cpuDone)
		time.Sleep(time.Until(measureFrom))
		cpuFrom = cpu.sample()
		time.Sleep(time.Until(end))
		cpuTo = cpu.sample()
	}()

	type tally struct {
		lat    []time.Duration
		errors int
		first  error
	}
	tallies := make([]tally, cfg.clients)
	var wg sync.WaitGroup
	for w := 0; w < cfg.clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			tl := &tallies[w]
			for {
				t0 := time.Now()
				if !t0.Before(end) || ctx.Err() != nil {
					return
				}
				err := op(ctx, w, rng)
				if t0.Before(measureFrom) {
					continue
				}
				track.count(err)
				if err != nil {
					tl.errors++
					if tl.first == nil {
						tl.first = err
					}
					continue
				}
				tl.lat = append(tl.lat, time.Since(t0))
			}
		}()
	}
	wg.Wait()
	<-cpuDone
	p := phase{ServerCPU: -1, ClientCPU: cpuTo.client - cpuFrom.client}
	if cpuFrom.servers >= 0 && cpuTo.servers >= 0 {
		p.ServerCPU = cpuTo.servers - cpuFrom.servers
	}
	var all []time.Duration
	for _, tl := range tallies {
		all = append(all, tl.lat...)
		p.Errors += tl.errors
		if p.FirstErr == nil {
			p.FirstErr = tl.first
		}
	}
	p.Ops = len(all)
	p.Elapsed = cfg.duration
	slices.Sort(all)
	if len(all) > 0 {
		p.P50 = all[len(all)/2]
		p.P99 = all[len(all)*99/100]
	}
	track.done(p)
	return p
}
