package faults

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"clusterkit.dev/clusterkit"
)

// Monitor samples every node's map while a run goes on, to check the
// library's invariants: no two nodes are ever named primary of a partition
// with the same epoch, and no partition's primary stays a node that cannot
// serve (killed, paused, cut off) for longer than failover takes.
type Monitor struct {
	C   *Cluster
	Rec *Recorder
	// Down reports the nodes that cannot serve at a time of the run (the
	// nemesis's targets while their fault lasts).
	Down func(at int64) []string

	mu sync.Mutex
	// primaries: partition and epoch -> the primaries seen with them.
	primaries map[[2]uint64][]string
	// since: partition -> when its primary in the newest map became a
	// node that cannot serve (0: it can).
	since    map[int]int64
	longest  map[int]time.Duration
	versions []uint64          // newest version per sample
	seen     map[string]uint64 // node -> last version recorded
	maps     []MapRecord
}

// Run samples every interval until ctx ends.
func (mo *Monitor) Run(ctx context.Context, interval time.Duration) {
	mo.primaries = map[[2]uint64][]string{}
	mo.since = map[int]int64{}
	mo.longest = map[int]time.Duration{}
	mo.seen = map[string]uint64{}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		mo.sample(ctx)
	}
}

func (mo *Monitor) sample(ctx context.Context) {
	var newest *clusterkit.ClusterInfo
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range mo.C.Nodes() {
		if !n.Running() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			m, err := mo.C.Map(sctx, n)
			if err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			mo.mu.Lock()
			if mo.seen[n.ID] != m.Version {
				mo.seen[n.ID] = m.Version
				rec := MapRecord{At: mo.Rec.Now(), Node: n.ID, Version: m.Version, Leader: m.LeaderID}
				for _, p := range m.Partitions {
					rec.Partitions = append(rec.Partitions, PartitionRecord{Index: p.Index, Epoch: p.Epoch,
						Primary: p.PrimaryNode, Replicas: p.ReplicaNodes, Joining: p.JoiningNodes})
				}
				mo.maps = append(mo.maps, rec)
			}
			for _, p := range m.Partitions {
				if p.PrimaryNode == "" {
					continue
				}
				k := [2]uint64{uint64(p.Index), p.Epoch}
				if !slices.Contains(mo.primaries[k], p.PrimaryNode) {
					mo.primaries[k] = append(mo.primaries[k], p.PrimaryNode)
				}
			}
			mo.mu.Unlock()
			if newest == nil || m.Version > newest.Version {
				newest = m
			}
		}()
	}
	wg.Wait()
	if newest == nil {
		return
	}
	now := mo.Rec.Now()
	down := mo.Down(now)
	mo.mu.Lock()
	defer mo.mu.Unlock()
	mo.versions = append(mo.versions, newest.Version)
	for _, p := range newest.Partitions {
		if p.PrimaryNode == "" || slices.Contains(down, p.PrimaryNode) {
			if mo.since[p.Index] == 0 {
				mo.since[p.Index] = now
			}
			mo.longest[p.Index] = max(mo.longest[p.Index], time.Duration(now-mo.since[p.Index]))
		} else {
			mo.since[p.Index] = 0
		}
	}
}

// Maps returns the maps recorded, in the order seen.
func (mo *Monitor) Maps() []MapRecord {
	mo.mu.Lock()
	defer mo.mu.Unlock()
	return slices.Clone(mo.maps)
}

// TwoPrimaries lists every partition and epoch that two nodes were named
// primary of.
func (mo *Monitor) TwoPrimaries() []string {
	mo.mu.Lock()
	defer mo.mu.Unlock()
	var out []string
	for k, ids := range mo.primaries {
		if len(ids) > 1 {
			out = append(out, fmt.Sprintf("partition %d epoch %d: %v", k[0], k[1], ids))
		}
	}
	slices.Sort(out)
	return out
}

// LongestWithoutPrimary is the longest time any partition's primary, in
// the newest map sampled, was a node that could not serve (or none).
func (mo *Monitor) LongestWithoutPrimary() (partition int, d time.Duration) {
	mo.mu.Lock()
	defer mo.mu.Unlock()
	partition = -1
	for p, l := range mo.longest {
		if l > d {
			partition, d = p, l
		}
	}
	return partition, d
}

// Converged waits until every running node serves the same map, with a
// primary for every partition, and returns how long it took.
func Converged(ctx context.Context, c *Cluster, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if last = sameMap(ctx, c); last == nil {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return time.Since(start), fmt.Errorf("maps did not converge in %v: %w", timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func sameMap(ctx context.Context, c *Cluster) error {
	var first *clusterkit.ClusterInfo
	for _, n := range c.Nodes() {
		if !n.Running() {
			continue
		}
		m, err := c.Map(ctx, n)
		if err != nil {
			return err
		}
		for _, p := range m.Partitions {
			if p.PrimaryNode == "" || len(p.JoiningNodes) > 0 {
				return fmt.Errorf("%s: %s has primary %q, joining %v", n.ID, p.ID, p.PrimaryNode, p.JoiningNodes)
			}
		}
		if first == nil {
			first = m
		} else if m.Version != first.Version {
			return fmt.Errorf("%s has map version %d, others %d", n.ID, m.Version, first.Version)
		}
	}
	return nil
}
