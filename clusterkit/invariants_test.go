package clusterkit_test

import (
	"flag"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
)

// TestInvariantsUnderRandomFaults runs random schedules of node kills and
// restarts against a real 5-node cluster (RF 3, at most two nodes down at
// once) while sampling every running node's map, and checks:
//   - while any owner of a partition in a node's previous map is running,
//     the partition has a running owner in its next map;
//   - no two nodes are primary of a partition with the same epoch;
//   - after the faults stop, all nodes converge to the same map.
//
// Each schedule costs seconds, so the default run tries 3; raise it with
// -rapid.checks.
func TestInvariantsUnderRandomFaults(t *testing.T) {
	if f := flag.Lookup("rapid.checks"); f != nil && !flagSet("rapid.checks") {
		old := f.Value.String()
		_ = f.Value.Set("3")
		defer f.Value.Set(old)
	}
	rapid.Check(t, func(rt *rapid.T) {
		cfg := clusterkit.LocalConfig()
		cfg.ReReplicationDelay = rapid.SampledFrom([]time.Duration{500 * time.Millisecond, 3 * time.Second}).Draw(rt, "grace")
		c := cktest.New(t, 5, cktest.WithConfig(cfg))
		c.WaitConverged()
		s := newSampler(c)
		defer s.stop()

		steps := rapid.IntRange(3, 8).Draw(rt, "steps")
		for i := 0; i < steps; i++ {
			var down []int
			for _, m := range c.Members() {
				if c.CK(m.Index) == nil {
					down = append(down, m.Index)
				}
			}
			switch action := rapid.SampledFrom([]string{"kill", "restart", "wait"}).Draw(rt, "action"); {
			case action == "kill" && len(down) < 2:
				i := rapid.IntRange(0, 4).Filter(func(i int) bool { return !slices.Contains(down, i) }).Draw(rt, "victim")
				c.Stop(i)
			case action == "restart" && len(down) > 0:
				c.Start(rapid.SampledFrom(down).Draw(rt, "revived"))
			default:
				time.Sleep(time.Duration(rapid.IntRange(50, 1500).Draw(rt, "pause")) * time.Millisecond)
			}
			if err := s.violation(); err != nil {
				rt.Fatal(err)
			}
		}
		c.StartAll()
		c.WaitConverged()
		s.stop()
		if err := s.violation(); err != nil {
			rt.Fatal(err)
		}
		ref := cktest.Owners(c.Member(0).CK)
		for _, m := range c.Running() {
			if !cktest.SameOwners(cktest.Owners(m.CK), ref) {
				rt.Fatalf("%s's map differs after the faults stopped", m.ID)
			}
		}
		c.StopAll()
	})
}

func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// sampler watches every running member's map every few milliseconds.
type sampler struct {
	c    *cktest.Cluster
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once

	mu        sync.Mutex
	err       error
	primaries map[[2]uint64]string // (partition, epoch) -> primary
	last      map[string][]clusterkit.Partition
}

func newSampler(c *cktest.Cluster) *sampler {
	s := &sampler{c: c, done: make(chan struct{}), primaries: map[[2]uint64]string{},
		last: map[string][]clusterkit.Partition{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			select {
			case <-s.done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			s.sample()
		}
	}()
	return s
}

func (s *sampler) stop() {
	s.once.Do(func() { close(s.done) })
	s.wg.Wait()
}

func (s *sampler) violation() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *sampler) fail(format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf(format, args...)
	}
}

func (s *sampler) sample() {
	running := map[string]bool{}
	members := s.c.Running()
	for _, m := range members {
		running[m.ID] = true
	}
	for _, m := range members {
		ck := s.c.CK(m.Index)
		if ck == nil {
			continue
		}
		parts := ck.Partitions()
		s.mu.Lock()
		prev := s.last[m.ID]
		for i, p := range parts {
			key := [2]uint64{uint64(i), p.Epoch}
			if p.PrimaryNode != "" {
				if other, ok := s.primaries[key]; ok && other != p.PrimaryNode {
					s.fail("%s epoch %d has two primaries: %s and %s", p.ID, p.Epoch, other, p.PrimaryNode)
				}
				s.primaries[key] = p.PrimaryNode
			}
			if prev == nil || prev[i].Version == p.Version {
				continue
			}
			if anyRunning(running, prev[i]) && !anyRunning(running, p) {
				s.fail("%s on %s: version %d has no running owner though a previous owner runs (%s %v -> %s %v)",
					p.ID, m.ID, p.Version, prev[i].PrimaryNode, prev[i].ReplicaNodes, p.PrimaryNode, p.ReplicaNodes)
			}
		}
		s.last[m.ID] = parts
		s.mu.Unlock()
	}
}

func anyRunning(running map[string]bool, p clusterkit.Partition) bool {
	if running[p.PrimaryNode] {
		return true
	}
	for _, r := range p.ReplicaNodes {
		if running[r] {
			return true
		}
	}
	return false
}
