package cktest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
)

// Eventually retries cond every 20ms until it returns nil or the harness
// timeout passes, then fails the test with cond's last error.
func (c *Cluster) Eventually(what string, cond func() error) {
	c.t.Helper()
	Eventually(c.t, c.opts.timeout, what, cond)
}

// Eventually retries cond every 20ms until it returns nil or timeout
// passes, then fails t with cond's last error. It is for tests that run
// their nodes without a Cluster, for example as processes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	if err := poll(timeout, cond); err != nil {
		t.Fatalf("%s: not true after %v: %v", what, timeout, err)
	}
}

func poll(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Leader waits for a running member that is raft leader and returns it.
func (c *Cluster) Leader() *Member {
	c.t.Helper()
	var leader *Member
	c.Eventually("a leader", func() error {
		for _, m := range c.Running() {
			if ck := c.ck(m); ck != nil && ck.IsLeader() {
				leader = m
				return nil
			}
		}
		return fmt.Errorf("no running member is leader")
	})
	return leader
}

// Converged reports nil when every running member has applied the same map
// version, lists every running member, knows the leader, and (with
// ownersAll) every running member owns at least one partition.
func (c *Cluster) Converged(ownersAll bool) error {
	running := c.Running()
	if len(running) == 0 {
		return fmt.Errorf("no running member")
	}
	var version uint64
	for i, m := range running {
		ck := c.ck(m)
		if ck == nil {
			return fmt.Errorf("%s stopped", m.ID)
		}
		if ck.Leader() == nil {
			return fmt.Errorf("%s knows no leader", m.ID)
		}
		v := ck.Version()
		if i == 0 {
			version = v
		} else if v != version {
			return fmt.Errorf("%s at version %d, %s at %d", running[0].ID, version, m.ID, v)
		}
		parts := ck.Partitions()
		if parts == nil {
			return fmt.Errorf("%s has no partition map", m.ID)
		}
		for _, o := range running {
			if ck.Node(o.ID) == nil {
				return fmt.Errorf("%s does not list %s", m.ID, o.ID)
			}
		}
		if ownersAll {
			owners := map[string]bool{}
			for _, p := range parts {
				owners[p.PrimaryNode] = true
				for _, r := range p.ReplicaNodes {
					owners[r] = true
				}
			}
			for _, o := range running {
				if !owners[o.ID] {
					return fmt.Errorf("%s's map gives %s no partition", m.ID, o.ID)
				}
			}
		}
	}
	return nil
}

// WaitConverged waits until Converged(true) holds and the map has stopped
// changing.
func (c *Cluster) WaitConverged() {
	c.t.Helper()
	c.Eventually("convergence", func() error {
		if err := c.Converged(true); err != nil {
			return err
		}
		v := c.ck(c.Running()[0]).Version()
		time.Sleep(100 * time.Millisecond)
		if err := c.Converged(true); err != nil {
			return err
		}
		if nv := c.ck(c.Running()[0]).Version(); nv != v {
			return fmt.Errorf("map still changing: version %d -> %d", v, nv)
		}
		return nil
	})
}

// Owners returns the owners of every partition as member m sees them,
// primary first.
func Owners(ck *clusterkit.ClusterKit) [][]string {
	parts := ck.Partitions()
	out := make([][]string, len(parts))
	for i, p := range parts {
		out[i] = append([]string{p.PrimaryNode}, p.ReplicaNodes...)
	}
	return out
}

// SameOwners reports whether two tables are equal.
func SameOwners(a, b [][]string) bool {
	return slices.EqualFunc(a, b, slices.Equal[[]string])
}
