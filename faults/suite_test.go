package faults

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The suite's settings, from the environment (make test-faults sets them):
//
//	FAULTS_SEED        the run's seed (default 31: crash-primary, split, two-nodes; make test-faults: the clock)
//	FAULTS_COUNT       faults per strategy (default 3)
//	FAULTS_STRATEGIES  which services, comma-separated (default all three)
//	FAULTS_KINDS       which faults to draw from, comma-separated (default all)
//	FAULTS_HOLD        how long each fault lasts (default 8s)
//	FAULTS_QUIET       time between faults (default 4s)
//	FAULTS_NODES       nodes that form each cluster (default 5)
//	FAULTS_REPORT      a file to write the report table to
type settings struct {
	seed       uint64
	count      int
	strategies []Strategy
	kinds      []FaultKind
	hold       time.Duration
	quiet      time.Duration
	nodes      int
	report     string
}

func loadSettings(t *testing.T) settings {
	s := settings{seed: 31, count: 3, strategies: Strategies, kinds: Kinds, hold: 8 * time.Second, quiet: 4 * time.Second, nodes: 5,
		report: os.Getenv("FAULTS_REPORT")}
	var err error
	num := func(name string, dst *int) {
		if v := os.Getenv(name); v != "" && err == nil {
			if *dst, err = strconv.Atoi(v); err == nil && *dst <= 0 {
				err = fmt.Errorf("%s: %d must be positive", name, *dst)
			}
		}
	}
	dur := func(name string, dst *time.Duration) {
		if v := os.Getenv(name); v != "" && err == nil {
			*dst, err = time.ParseDuration(v)
		}
	}
	if v := os.Getenv("FAULTS_SEED"); v != "" {
		s.seed, err = strconv.ParseUint(v, 10, 64)
	}
	num("FAULTS_COUNT", &s.count)
	num("FAULTS_NODES", &s.nodes)
	dur("FAULTS_HOLD", &s.hold)
	dur("FAULTS_QUIET", &s.quiet)
	if v := os.Getenv("FAULTS_STRATEGIES"); v != "" && err == nil {
		s.strategies = nil
		for name := range strings.SplitSeq(v, ",") {
			found := false
			for _, st := range Strategies {
				if st.Name == name {
					s.strategies, found = append(s.strategies, st), true
				}
			}
			if !found {
				err = fmt.Errorf("FAULTS_STRATEGIES: unknown strategy %q (sync, server-side, async)", name)
			}
		}
	}
	if v := os.Getenv("FAULTS_KINDS"); v != "" && err == nil {
		s.kinds = nil
		for name := range strings.SplitSeq(v, ",") {
			if !slices.Contains(Kinds, FaultKind(name)) {
				err = fmt.Errorf("FAULTS_KINDS: unknown fault %q (%v)", name, Kinds)
			}
			s.kinds = append(s.kinds, FaultKind(name))
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// bins builds the services' commands once per test binary.
var bins struct {
	once sync.Once
	dir  string
	path map[string]string
	err  error
}

func buildAll(t *testing.T) map[string]string {
	t.Helper()
	bins.once.Do(func() {
		if bins.dir, bins.err = os.MkdirTemp("", "ck-faults-bin"); bins.err != nil {
			return
		}
		bins.path = map[string]string{}
		for _, s := range Strategies {
			if bins.path[s.Name], bins.err = build("..", s.Service, bins.dir); bins.err != nil {
				return
			}
		}
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
	return bins.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bins.dir != "" {
		_ = os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}

// TestFaults runs every strategy under the seeded schedule and holds it to
// its guarantees and to the availability bounds of bounds.go.
func TestFaults(t *testing.T) {
	if err := CanBuildNetworks(); err != nil {
		t.Skipf("the fault suite needs network namespaces: %v", err)
	}
	s := loadSettings(t)
	paths := buildAll(t)
	schedule := Schedule(s.seed, s.count, s.kinds)
	t.Logf("seed %d (FAULTS_SEED=%d replays it), schedule %v, hold %v, quiet %v", s.seed, s.seed, schedule, s.hold, s.quiet)
	var reports []*Report
	for i, st := range s.strategies {
		t.Run(st.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			dir := t.TempDir()
			r, err := Run(ctx, RunConfig{Strategy: st, Bin: paths[st.Name], Dir: dir, Seed: s.seed, Nodes: s.nodes,
				Partitions: 16, Keys: 16, Clients: 6, Schedule: schedule, Membership: true, Hold: s.hold, Quiet: s.quiet,
				NetID: os.Getpid() + i, Logf: t.Logf})
			if err != nil {
				t.Fatal(err)
			}
			reports = append(reports, r)
			failed := checkReport(t, st, r)
			if failed || t.Failed() {
				saveFailure(t, r, dir)
			}
		})
	}
	var buf bytes.Buffer
	if err := WriteTable(&buf, reports); err != nil {
		t.Fatal(err)
	}
	t.Logf("seed %d\n%s", s.seed, buf.String())
	if s.report != "" {
		if err := os.WriteFile(s.report, buf.Bytes(), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// checkReport fails t for every broken promise of r and reports whether it
// did.
func checkReport(t *testing.T, st Strategy, r *Report) bool {
	t.Helper()
	before := t.Failed()
	for _, e := range r.Errors {
		t.Error(e)
	}
	if st.Linearizable && r.Linearizable != "yes" {
		t.Errorf("history linearizable: %s", r.Linearizable)
		if r.Linearizable == "no" {
			logViolations(t, r.History.Ops, IllegalKeys(r.History.Ops, time.Minute))
		}
	}
	b := boundsFor(st.Name)
	if st.Linearizable && len(r.Lost) > 0 {
		t.Errorf("%d acknowledged writes lost, first %+v", len(r.Lost), r.Lost[0])
	}
	if !st.Linearizable {
		for _, op := range r.Lost {
			if !lossExplained(r.History, op, b.LossWindow) {
				t.Errorf("acknowledged write lost outside the stated bound (acknowledged more than %v before a fault of its primary): %+v", b.LossWindow, op)
			}
		}
	}
	if r.HooksOutOfOrder > 0 {
		t.Errorf("%v partition events delivered after a newer one of the same partition", r.HooksOutOfOrder)
	}
	if len(r.TwoPrimaries) > 0 {
		t.Errorf("two primaries with one epoch: %v", r.TwoPrimaries)
	}
	if r.NoPrimary > b.NoPrimary {
		t.Errorf("partition %d had no live primary for %v (bound %v)", r.NoPrimaryPartition, r.NoPrimary, b.NoPrimary)
	}
	if r.Converge > b.Converge {
		t.Errorf("maps converged %v after the last heal (bound %v)", r.Converge, b.Converge)
	}
	if r.Replicas > b.Replicas {
		t.Errorf("owners converged %v after the load (bound %v)", r.Replicas, b.Replicas)
	}
	unpromised := Unpromised(r.History)
	if bad := r.Total.Failed + r.Total.Maybe - unpromised; float64(bad) > b.FailedShare*float64(r.Total.Ops-unpromised) {
		t.Errorf("%d of %d operations failed or may have (bound %.0f%%), besides %d on partitions a fault left without a majority of owners",
			bad, r.Total.Ops-unpromised, 100*b.FailedShare, unpromised)
	}
	for _, f := range r.Faults {
		kind := FaultKind(f.Kind)
		if kind == JoinNode || kind == DrainNode {
			continue
		}
		if f.After.OK < minOpsAfter {
			t.Errorf("%s %v: %d operations succeeded after the heal (want %d or more)", f.Kind, f.Targets, f.After.OK, minOpsAfter)
		}
		w := b.Window[kind]
		if kind == DiskFull && b.FullDiskRefuses {
			w.Writes = time.Duration(f.Heal-f.Start) + b.RecoverAfter
		}
		if f.All.Writes > b.AllWindow || f.All.Reads > b.AllWindow {
			t.Errorf("%s %v: %v with no acknowledged write and %v with no read cluster-wide (bound %v)", f.Kind, f.Targets,
				f.All.Writes, f.All.Reads, b.AllWindow)
		}
		if f.Led.Writes > w.Writes || f.Led.Reads > w.Reads {
			t.Errorf("%s %v: %v with no acknowledged write and %v with no read on the partitions its targets led (bounds %v, %v)",
				f.Kind, f.Targets, f.Led.Writes, f.Led.Reads, w.Writes, w.Reads)
		}
	}
	return t.Failed() && !before
}

// lossExplained reports whether a lost write was acknowledged within
// window before a fault that touched its partition began.
func lossExplained(h *History, op Op, window time.Duration) bool {
	for _, f := range h.Faults {
		if FaultKind(f.Kind) == JoinNode || FaultKind(f.Kind) == DrainNode {
			continue
		}
		if op.Return <= f.Heal && op.Return >= f.Start-int64(window) && touchesKey(f, op.Key, h.Partitions) {
			return true
		}
	}
	return false
}

// saveFailure writes the run's history where TestReplay finds it, and
// next to it a folder with the nodes' logs and the history drawn by
// porcupine (history.html) when it is not linearizable.
func saveFailure(t *testing.T, r *Report, dir string) {
	keep := filepath.Join(failedDir, fmt.Sprintf("%s-%d", r.Strategy, r.Seed))
	if err := os.MkdirAll(keep, 0o755); err != nil {
		t.Error(err)
		return
	}
	path := keep + ".json"
	if err := r.History.Save(path); err != nil {
		t.Error(err)
		return
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	files = append(files, filepath.Join(dir, "history.html"))
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			_ = os.WriteFile(filepath.Join(keep, filepath.Base(f)), b, 0o644)
		}
	}
	t.Logf("history saved to faults/%s (go test -run TestReplay replays it), node logs in faults/%s", path, keep)
}
