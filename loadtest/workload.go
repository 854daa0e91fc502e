package main

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
	Consistency string
	Write, Read phase
	// Mixed is the phase of reads and writes (-mix); nil without one.
	Mixed        *phase
	Unverifiable bool // reads of the echo server return no stored value
}

// measure writes with cfg.clients workers for cfg.duration, then reads back
// keys that were written, checking every value, then, with cfg.mix, does
// both at once. prog, if not nil, shows how each phase goes.
func measure(ctx context.Context, name string, t target, cpu cpuMeter, prog *progress, cfg config, verify bool) (result, error) {
	value := strings.Repeat("v", cfg.valueSize)
	keys := newKeySpace(cfg.keys, cfg.clients)
	set := func(ctx context.Context, w int, rng *rand.Rand) error {
		i := keys.forWrite(w, rng)
		err := t.Set(ctx, keys.name(w, i), value)
		if err == nil {
			keys.wrote(w, i)
		}
		return err
	}
	get := func(ctx context.Context, w int, rng *rand.Rand) error {
		k, err := keys.forRead(w, rng)
		if err != nil {
			return err
		}
		got, err := t.Get(ctx, k)
		if err != nil {
			return err
		}
		if verify && got != value {
			return fmt.Errorf("read %s: got %d bytes, want the %d written", k, len(got), len(value))
		}
		return nil
	}
	r := result{Name: name, Unverifiable: !verify}
	r.Write = runPhase(ctx, cfg, cpu, prog.phase(name, "write"), set)
	if ctx.Err() != nil {
		return result{}, ctx.Err()
	}
	keys.seal()
	r.Read = runPhase(ctx, cfg, cpu, prog.phase(name, "read"), get)
	if cfg.mixed && ctx.Err() == nil {
		m := runPhase(ctx, cfg, cpu, prog.phase(name, "mixed"), func(ctx context.Context, w int, rng *rand.Rand) error {
			if rng.Float64() < cfg.mix {
				return get(ctx, w, rng)
			}
			return set(ctx, w, rng)
		})
		r.Mixed = &m
	}
	return r, ctx.Err()
}

// keySpace chooses the keys a measurement writes and reads. With size 0
// every write takes a new key, from a sequence of each worker's own, and
// a worker reads the keys it wrote. Otherwise writes draw from size keys
// at random, and reads from the keys the write phase wrote: reads ask only
// for keys written, so that every value read can be checked.
type keySpace struct {
	size int
	// With size 0: worker w wrote its keys 0 to written[w]-1; only worker
	// w touches written[w].
	written []int
	// With size > 0: bit i is set once key i was written.
	bits []atomic.Uint64
	// With size > 0: the keys written before seal, for reads.
	readable []int
}

func newKeySpace(size, clients int) *keySpace {
	if size == 0 {
		return &keySpace{written: make([]int, clients)}
	}
	return &keySpace{size: size, bits: make([]atomic.Uint64, (size+63)/64)}
}

// forWrite chooses the key worker w writes next.
func (k *keySpace) forWrite(w int, rng *rand.Rand) int {
	if k.size == 0 {
		return k.written[w]
	}
	return rng.IntN(k.size)
}

// wrote records that worker w's write of key i succeeded.
func (k *keySpace) wrote(w, i int) {
	if k.size == 0 {
		k.written[w]++
		return
	}
	k.bits[i/64].Or(1 << (i % 64))
}

// seal fixes the keys reads choose from: those written so far. Call it
// between phases, when no worker runs.
func (k *keySpace) seal() {
	if k.size == 0 {
		return
	}
	k.readable = k.readable[:0]
	for wi := range k.bits {
		b := k.bits[wi].Load()
		for b != 0 {
			k.readable = append(k.readable, wi*64+bits.TrailingZeros64(b))
			b &= b - 1
		}
	}
}

// forRead chooses a key, written before, that worker w reads next.
func (k *keySpace) forRead(w int, rng *rand.Rand) (string, error) {
	if k.size == 0 {
		if k.written[w] == 0 {
			return "", fmt.Errorf("worker %d wrote nothing to read", w)
		}
		return k.name(w, rng.IntN(k.written[w])), nil
	}
	if len(k.readable) == 0 {
		return "", errors.New("the write phase wrote no key to read")
	}
	return k.name(w, k.readable[rng.IntN(len(k.readable))]), nil
}

// name is the key of worker w's key number i (with size 0), or of key i
// of the space.
func (k *keySpace) name(w, i int) string {
	if k.size == 0 {
		return fmt.Sprintf("lt-%02d-%08d", w, i)
	}
	return fmt.Sprintf("lt-k%09d", i)
}

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
