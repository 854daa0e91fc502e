package clusterkit_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
)

// fastConfig is LocalConfig with a grace period long enough that a test
// decides when re-replication happens.
func fastConfig(reReplication time.Duration) clusterkit.Config {
	cfg := clusterkit.LocalConfig()
	cfg.ReReplicationDelay = reReplication
	return cfg
}

// primaryOf returns, for every partition, its primary in m's map.
func primaries(ck *clusterkit.ClusterKit) []string {
	var out []string
	for _, p := range ck.Partitions() {
		out = append(out, p.PrimaryNode)
	}
	return out
}

// livePrimaries reports nil when every running member's map gives every
// partition a primary that is alive and not dead.
func livePrimaries(c *cktest.Cluster, dead string) error {
	for _, m := range c.Running() {
		for _, p := range m.CK.Partitions() {
			n := m.CK.Node(p.PrimaryNode)
			if n == nil || p.PrimaryNode == dead || n.State != clusterkit.NodeAlive {
				return fmt.Errorf("%s: %s primary %q", m.ID, p.ID, p.PrimaryNode)
			}
		}
	}
	return nil
}

// victim returns a running non-leader member that is primary of at least
// one partition.
func victim(t testing.TB, c *cktest.Cluster) *cktest.Member {
	t.Helper()
	leader := c.Leader()
	for _, m := range c.Running() {
		if m != leader && slices.Contains(primaries(m.CK), m.ID) {
			return m
		}
	}
	t.Fatal("no non-leader primary")
	return nil
}

func TestDeadPrimaryFailsOverToAReplica(t *testing.T) {
	c := cktest.New(t, 5, cktest.WithConfig(fastConfig(time.Minute)))
	c.WaitConverged()
	v := victim(t, c)
	before := c.Leader().CK.Partitions()
	c.Stop(v.Index)

	c.Eventually("live primaries everywhere", func() error { return livePrimaries(c, v.ID) })
	after := c.Leader().CK.Partitions()
	for i, p := range before {
		q := after[i]
		if p.PrimaryNode != v.ID {
			if q.PrimaryNode != p.PrimaryNode || q.Epoch != p.Epoch {
				t.Errorf("%s: primary %s@%d became %s@%d though it did not die", p.ID, p.PrimaryNode, p.Epoch, q.PrimaryNode, q.Epoch)
			}
			continue
		}
		if !slices.Contains(p.ReplicaNodes, q.PrimaryNode) {
			t.Errorf("%s: new primary %s was not a replica %v (a promotion needs no copy)", p.ID, q.PrimaryNode, p.ReplicaNodes)
		}
		if q.Epoch <= p.Epoch {
			t.Errorf("%s: epoch %d -> %d, must increase with the primary", p.ID, p.Epoch, q.Epoch)
		}
		// Within the grace period the dead node keeps its replica slot.
		if !slices.Contains(q.ReplicaNodes, v.ID) {
			t.Errorf("%s: dead node lost its slot before ReReplicationDelay: %v", p.ID, q.ReplicaNodes)
		}
	}
	if n := c.Leader().CK.Node(v.ID); n == nil || n.State != clusterkit.NodeDead {
		t.Fatalf("killed node is %+v, want dead", n)
	}
	metrics := string(getBody(t, c.Leader().URL("/metrics"), http.StatusOK))
	if !strings.Contains(metrics, "clusterkit_failovers_total") || strings.Contains(metrics, "clusterkit_failovers_total 0\n") {
		t.Errorf("leader's failover counter did not move")
	}
}

func TestNodeBackWithinGraceKeepsItsPartitions(t *testing.T) {
	c := cktest.New(t, 4, cktest.WithConfig(fastConfig(time.Minute)))
	c.WaitConverged()
	v := victim(t, c)
	slots := func(ck *clusterkit.ClusterKit) []string {
		var out []string
		for _, p := range ck.Partitions() {
			if p.PrimaryNode == v.ID || slices.Contains(p.ReplicaNodes, v.ID) {
				out = append(out, p.ID)
			}
		}
		return out
	}
	owned := slots(c.Leader().CK)
	c.Stop(v.Index)
	c.Eventually("failover", func() error { return livePrimaries(c, v.ID) })

	var mu sync.Mutex
	var copies []string
	v.Init = func(ck *clusterkit.ClusterKit) {
		ck.OnPartitionEvent(func(_ context.Context, ev clusterkit.PartitionEvent) error {
			if ev.NewRole == clusterkit.RoleJoining {
				mu.Lock()
				copies = append(copies, fmt.Sprintf("%s@v%d(%s)", ev.PartitionID, ev.Version, ev.Reason))
				mu.Unlock()
			}
			return nil
		})
	}
	c.Start(v.Index)
	c.Eventually("node alive again", func() error {
		if n := c.Leader().CK.Node(v.ID); n == nil || n.State != clusterkit.NodeAlive {
			return fmt.Errorf("state %+v", n)
		}
		return nil
	})
	time.Sleep(500 * time.Millisecond)
	if got := slots(c.Leader().CK); !slices.Equal(got, owned) {
		t.Errorf("returned node owns %v, owned %v before", got, owned)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(copies) != 0 {
		t.Errorf("returned node was asked to copy %v, want none", copies)
	}
}

func TestDeadNodeIsReplacedAfterTheGracePeriodAndMayRejoin(t *testing.T) {
	c := cktest.New(t, 4, cktest.WithConfig(fastConfig(time.Second)))
	c.WaitConverged()
	v := victim(t, c)
	var mu sync.Mutex
	sources := map[string]string{} // partition -> copyFrom, on the gaining nodes
	for _, m := range c.Running() {
		if m == v {
			continue
		}
		m.CK.OnPartitionChange(func(pid string, from, to *clusterkit.Node) {
			mu.Lock()
			defer mu.Unlock()
			if from == nil {
				sources[pid] = ""
			} else {
				sources[pid] = from.ID
			}
		})
	}
	c.Stop(v.Index)
	c.Eventually("slots moved and node removed", func() error {
		for _, m := range c.Running() {
			if m.CK.Node(v.ID) != nil {
				return fmt.Errorf("%s still lists %s", m.ID, v.ID)
			}
			for _, p := range m.CK.Partitions() {
				if len(p.ReplicaNodes) != 2 || len(p.JoiningNodes) != 0 {
					return fmt.Errorf("%s: %s replicas %v joining %v", m.ID, p.ID, p.ReplicaNodes, p.JoiningNodes)
				}
			}
		}
		return nil
	})
	mu.Lock()
	if len(sources) == 0 {
		t.Error("no node was told to copy the dead node's partitions")
	}
	for pid, from := range sources {
		if from == "" || from == v.ID {
			t.Errorf("%s: copyFrom %q, want a live owner", pid, from)
		}
	}
	mu.Unlock()

	// The removed node comes back from its data dir and joins again.
	c.Start(v.Index)
	c.WaitConverged()
}

func TestLeaderKilledMidRebalanceRebalanceCompletes(t *testing.T) {
	cfg := fastConfig(time.Minute)
	cfg.MaxConcurrentMoves = 2
	cfg.PartitionCount = 32
	c := cktest.New(t, 3, cktest.WithConfig(cfg))
	c.WaitConverged()
	slowCopy := func(m *cktest.Member) {
		m.Init = func(ck *clusterkit.ClusterKit) {
			ck.OnPartitionEvent(func(ctx context.Context, ev clusterkit.PartitionEvent) error {
				if ev.NewRole == clusterkit.RoleJoining {
					select {
					case <-time.After(100 * time.Millisecond):
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				return nil
			})
		}
	}
	c.Add(slowCopy)
	c.Add(slowCopy)
	leader := c.Leader()
	c.Eventually("rebalance under way", func() error {
		for _, p := range leader.CK.Partitions() {
			if len(p.JoiningNodes) > 0 {
				return nil
			}
		}
		return errors.New("no handoff in flight")
	})
	c.Stop(leader.Index)
	c.Eventually("rebalance completed by the new leader", func() error {
		l := c.Leader()
		var stats clusterkit.PartitionStats
		getJSON(t, l.URL("/partitions/stats"), http.StatusOK, &stats)
		for _, n := range stats.Nodes {
			if n.ID == leader.ID {
				continue
			}
			if n.Primaries+n.Replicas == 0 {
				return fmt.Errorf("%s owns nothing", n.ID)
			}
		}
		for _, p := range l.CK.Partitions() {
			if len(p.JoiningNodes) > 0 {
				return fmt.Errorf("%s still joining %v", p.ID, p.JoiningNodes)
			}
			if p.PrimaryNode == leader.ID {
				return fmt.Errorf("%s still led by the dead leader", p.ID)
			}
		}
		return nil
	})
}

func TestHandoffTimeoutKeepsOldOwnersAndRetries(t *testing.T) {
	cfg := fastConfig(time.Minute)
	cfg.HandoffTimeout = 500 * time.Millisecond
	c := cktest.New(t, 3, cktest.WithConfig(cfg))
	c.WaitConverged()
	var failing atomic.Bool
	failing.Store(true)
	n := c.Add(func(m *cktest.Member) {
		m.Init = func(ck *clusterkit.ClusterKit) {
			ck.OnPartitionEvent(func(context.Context, clusterkit.PartitionEvent) error {
				if failing.Load() {
					return errors.New("disk full")
				}
				return nil
			})
		}
	})
	leader := c.Leader()
	c.Eventually("a handoff timed out", func() error {
		metrics := string(getBody(t, leader.URL("/metrics"), http.StatusOK))
		if !strings.Contains(metrics, `clusterkit_handoffs_total{result="timeout"}`) ||
			strings.Contains(metrics, `clusterkit_handoffs_total{result="timeout"} 0`) {
			return errors.New("no timeout counted")
		}
		return nil
	})
	for _, p := range leader.CK.Partitions() {
		if len(p.ReplicaNodes)+1 != 3 || p.PrimaryNode == n.ID || slices.Contains(p.ReplicaNodes, n.ID) {
			t.Fatalf("%s: owners %s %v while the joiner never became ready", p.ID, p.PrimaryNode, p.ReplicaNodes)
		}
	}
	failing.Store(false)
	c.WaitConverged() // the moves are planned again and now complete
}

func TestDrainEmptiesANodeSafely(t *testing.T) {
	c := cktest.New(t, 4, cktest.WithConfig(fastConfig(time.Minute)))
	c.WaitConverged()
	m := c.Member(2)
	var h clusterkit.Health
	getJSON(t, m.URL("/health/detailed"), http.StatusOK, &h)
	if h.SafeToStop == nil {
		t.Fatalf("no safe_to_stop in %+v", h)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := m.CK.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	getJSON(t, m.URL("/health/detailed"), http.StatusOK, &h)
	if h.SafeToStop == nil || !*h.SafeToStop || h.Draining == nil || !*h.Draining {
		t.Fatalf("after drain: %+v", h)
	}
	for _, p := range m.CK.Partitions() {
		if p.PrimaryNode == m.ID || slices.Contains(p.ReplicaNodes, m.ID) || len(p.ReplicaNodes) != 2 {
			t.Fatalf("%s after drain: %s %v", p.ID, p.PrimaryNode, p.ReplicaNodes)
		}
	}
	c.Stop(m.Index)
	var stats clusterkit.PartitionStats
	getJSON(t, c.Leader().URL("/partitions/stats"), http.StatusOK, &stats)
	if stats.UnderReplicated != 0 || stats.Unowned != 0 {
		t.Fatalf("after stopping a drained node: %+v", stats)
	}
}

// BenchmarkFailover kills a node with no graceful step and reports the
// time until every live node's map shows a live primary for every
// partition, over b.N runs (min, median and max).
//
//	go test -run '^$' -bench Failover -benchtime 5x .
func BenchmarkFailover(b *testing.B) {
	for _, preset := range []struct {
		name string
		cfg  clusterkit.Config
	}{{"fast", fastConfig(time.Minute)}, {"default", clusterkit.DefaultConfig()}} {
		for _, who := range []string{"follower", "leader"} {
			b.Run(preset.name+"/"+who, func(b *testing.B) {
				var runs []time.Duration
				for i := 0; i < b.N; i++ {
					c := cktest.New(b, 5, cktest.WithConfig(preset.cfg))
					c.WaitConverged()
					v := c.Leader()
					if who == "follower" {
						v = victim(b, c)
					}
					start := time.Now()
					c.Stop(v.Index)
					c.Eventually("live primaries", func() error { return livePrimaries(c, v.ID) })
					runs = append(runs, time.Since(start))
					c.StopAll()
				}
				sort.Slice(runs, func(i, j int) bool { return runs[i] < runs[j] })
				b.ReportMetric(runs[0].Seconds(), "s/min")
				b.ReportMetric(runs[len(runs)/2].Seconds(), "s/median")
				b.ReportMetric(runs[len(runs)-1].Seconds(), "s/max")
			})
		}
	}
}
