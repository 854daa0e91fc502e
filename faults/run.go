package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// RunConfig is one run of the suite against one service.
type RunConfig struct {
	Strategy   Strategy
	Bin        string
	Dir        string
	Seed       uint64
	Nodes      int
	Partitions int
	Keys       int
	Clients    int
	// Schedule is the faults, injected one after another.
	Schedule []FaultKind
	// Membership adds a node during the first fault and drains one during
	// the second.
	Membership bool
	// Hold is how long a fault lasts; Quiet the time between faults and
	// before the first.
	Hold, Quiet time.Duration
	NetID       int
	Logf        func(format string, args ...any)
}

// FaultResult is what one fault cost.
type FaultResult struct {
	FaultRecord
	// During counts the operations called while the fault lasted, After
	// those from its heal to the next fault.
	During, After Counts
	// All is the longest time with no acknowledged write or read over every
	// key, Led over the partitions the fault's targets were primary of (or
	// every key when they led none), both from the fault's start to the
	// next fault (or the end of the run).
	All, Led Window
}

// Report is what a run saw.
type Report struct {
	Strategy string
	Seed     uint64
	Faults   []FaultResult
	Total    Counts
	// Lost are acknowledged writes a final read contradicts.
	Lost []Op
	// Linearizable is "yes", "no", "unknown" (the check timed out) or ""
	// when the strategy does not promise it.
	Linearizable string
	// Converge is the time from the last heal until every node served one
	// map; Replicas (kv-async) until every owner held the primary's value
	// of every key, from the end of the load.
	Converge, Replicas time.Duration
	TwoPrimaries       []string
	NoPrimary          time.Duration
	NoPrimaryPartition int
	Errors             []string // what went wrong around the run (exited nodes, ...)
	// HooksOutOfOrder counts partition events the running nodes delivered
	// after a newer one of the same partition (ClusterKit's
	// clusterkit_hook_deliveries_out_of_order_total; a node's count starts
	// again when it restarts).
	HooksOutOfOrder float64
	History         *History
}

// Schedule draws n faults from kinds with seed, each kind at most once
// until all have been drawn.
func Schedule(seed uint64, n int, kinds []FaultKind) []FaultKind {
	rnd := rand.New(rand.NewPCG(seed, 0x5eed))
	var out []FaultKind
	for len(out) < n {
		for _, i := range rnd.Perm(len(kinds)) {
			if len(out) < n {
				out = append(out, kinds[i])
			}
		}
	}
	return out
}

// Run starts a cluster, runs the workload and the schedule, checks the
// history and stops everything it started.
func Run(ctx context.Context, cfg RunConfig) (res *Report, err error) {
	res = &Report{Strategy: cfg.Strategy.Name, Seed: cfg.Seed}
	c, err := StartCluster(ctx, ClusterConfig{Strategy: cfg.Strategy, Bin: cfg.Bin, Dir: cfg.Dir, Nodes: cfg.Nodes,
		Partitions: cfg.Partitions, DiskMiB: 256, NetID: cfg.NetID})
	defer func() {
		if c != nil {
			if cerr := c.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("stop cluster: %w", cerr)
			}
		}
	}()
	if err != nil {
		return res, err
	}
	keys := make([]string, cfg.Keys)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%02d", i)
	}
	rec := NewRecorder()
	w := &Workload{C: c, Rec: rec, Keys: keys, Clients: cfg.Clients, Pause: 20 * time.Millisecond, Timeout: time.Second}
	ne := &Nemesis{C: c, Keys: keys, Rnd: rand.New(rand.NewPCG(cfg.Seed, 1))}

	var mu sync.Mutex
	var faults []FaultRecord
	down := func(at int64) []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, f := range faults {
			if f.Start <= at && (f.Heal == 0 || at < f.Heal) && FaultKind(f.Kind) != DiskFull &&
				FaultKind(f.Kind) != JoinNode && FaultKind(f.Kind) != DrainNode {
				out = append(out, f.Targets...)
			}
		}
		return out
	}
	mon := &Monitor{C: c, Rec: rec, Down: down}
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); w.Run(loadCtx, cfg.Seed) }()
	go func() { defer wg.Done(); mon.Run(loadCtx, 100*time.Millisecond) }()
	stop := func() { stopLoad(); wg.Wait() }
	defer stop()

	sleep := func(d time.Duration) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	}
	record := func(a *active) int {
		mu.Lock()
		defer mu.Unlock()
		faults = append(faults, a.rec)
		return len(faults) - 1
	}
	for i, k := range cfg.Schedule {
		if err := sleep(cfg.Quiet); err != nil {
			return res, err
		}
		if cfg.Membership && i < 2 {
			kind := JoinNode
			if i == 1 {
				kind = DrainNode
			}
			a, err := ne.Inject(ctx, kind, rec.Now())
			if err != nil {
				return res, fmt.Errorf("%s: %w", kind, err)
			}
			a.rec.Heal = rec.Now()
			record(a)
			cfg.Logf("%s: %s", cfg.Strategy.Name, a.describe())
		}
		a, err := ne.Inject(ctx, k, rec.Now())
		if err != nil {
			return res, fmt.Errorf("inject %s: %w", k, err)
		}
		j := record(a)
		cfg.Logf("%s: %s for %v", cfg.Strategy.Name, a.describe(), cfg.Hold)
		if err := sleep(cfg.Hold); err != nil {
			return res, err
		}
		if err := a.heal(); err != nil {
			return res, fmt.Errorf("heal %s: %w", a.describe(), err)
		}
		mu.Lock()
		faults[j].Heal = rec.Now()
		mu.Unlock()
	}
	// The time to converge counts from the last heal; the load goes on.
	res.Converge, err = Converged(ctx, c, 60*time.Second)
	if err != nil {
		res.Errors = append(res.Errors, err.Error())
	}
	if err := sleep(cfg.Quiet); err != nil {
		return res, err
	}
	stop()
	for _, n := range c.Nodes() {
		if n.Exited() {
			res.Errors = append(res.Errors, fmt.Sprintf("%s exited on its own; see %s", n.ID, n.LogPath))
		}
	}
	if !cfg.Strategy.Linearizable {
		// Replication is asynchronous: the time until every owner holds
		// the primary's value counts from the end of the load.
		res.Replicas, err = replicasConverge(ctx, c, keys, 60*time.Second)
		if err != nil {
			res.Errors = append(res.Errors, err.Error())
		}
	}

	// Final reads: every key, through the cluster, retried until they
	// succeed; they join the history.
	final := map[string]string{}
	rnd := rand.New(rand.NewPCG(cfg.Seed, 2))
	for _, key := range keys {
		deadline := time.Now().Add(30 * time.Second)
		for {
			op := w.Do(ctx, cfg.Clients, Read, key, "", rnd)
			if op.Result == OK {
				rec.Add(op)
				final[key] = op.Value
				break
			}
			if time.Now().After(deadline) {
				res.Errors = append(res.Errors, fmt.Sprintf("final read of %s: %s", key, op.Err))
				break
			}
			_ = sleep(100 * time.Millisecond)
		}
	}

	for _, n := range c.Nodes() {
		if !n.Running() {
			continue
		}
		v, err := c.Counter(ctx, n, "clusterkit_hook_deliveries_out_of_order_total")
		if err != nil {
			res.Errors = append(res.Errors, err.Error())
		}
		res.HooksOutOfOrder += v
	}

	ops := rec.Ops()
	mu.Lock()
	h := &History{Strategy: cfg.Strategy.Name, Seed: cfg.Seed, Partitions: cfg.Partitions, Ops: ops, Faults: slices.Clone(faults),
		Maps: mon.Maps()}
	mu.Unlock()
	for _, op := range ops {
		h.End = max(h.End, op.Return)
	}
	res.History = h
	res.Total = Count(ops, 0, 0)
	res.Lost = LostWrites(ops, final)
	res.TwoPrimaries = mon.TwoPrimaries()
	res.NoPrimaryPartition, res.NoPrimary = mon.LongestWithoutPrimary()
	res.Faults = Summarize(h)
	if cfg.Strategy.Linearizable {
		r, err := CheckLinearizable(ops, 60*time.Second, filepath.Join(cfg.Dir, "history.html"))
		if err != nil {
			res.Errors = append(res.Errors, err.Error())
		}
		switch r {
		case porcupine.Ok:
			res.Linearizable = "yes"
		case porcupine.Illegal:
			res.Linearizable = "no"
		default:
			res.Linearizable = "unknown"
		}
	}
	return res, nil
}

// Summarize computes each fault's figures from a history.
func Summarize(h *History) []FaultResult {
	var out []FaultResult
	for i, f := range h.Faults {
		end := h.End
		for _, g := range h.Faults[i+1:] {
			if FaultKind(g.Kind) != JoinNode && FaultKind(g.Kind) != DrainNode {
				end = g.Start
				break
			}
		}
		fr := FaultResult{FaultRecord: f, During: Count(h.Ops, f.Start, f.Heal), After: Count(h.Ops, f.Heal, end)}
		fr.All, fr.Led = Availability(h.Ops, f.Start, end, f.Led, h.Partitions)
		out = append(out, fr)
	}
	return out
}
