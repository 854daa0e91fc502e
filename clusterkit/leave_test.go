package clusterkit_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
)

func voters(t *testing.T, m *cktest.Member) clusterkit.ConsensusStats {
	t.Helper()
	var s clusterkit.ConsensusStats
	getJSON(t, m.URL("/consensus/stats"), http.StatusOK, &s)
	return s
}

// A voter that leaves is removed from raft and from the map, its partitions
// go to the others, and a non-voter is promoted to keep MaxVoters voters.
func TestLeaveRemovesNodeAndPromotesANonVoter(t *testing.T) {
	cfg := clusterkit.LocalConfig()
	cfg.MaxVoters = 3
	c := cktest.New(t, 5, cktest.WithConfig(cfg))
	c.WaitConverged()
	leader := c.Leader()
	before := voters(t, leader)
	if len(before.Voters) != 3 || len(before.NonVoters) != 2 {
		t.Fatalf("voters %v nonvoters %v, want 3 and 2", before.Voters, before.NonVoters)
	}
	// Pick a voter that is not the leader.
	var leaving *cktest.Member
	for _, m := range c.Running() {
		if m != leader && slices.Contains(before.Voters, m.ID) {
			leaving = m
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := leaving.CK.Leave(ctx); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	c.Stop(leaving.Index)

	c.WaitConverged()
	c.Eventually("voter count restored", func() error {
		s := voters(t, c.Leader())
		if len(s.Voters) != 3 || len(s.NonVoters) != 1 || slices.Contains(append(s.Voters, s.NonVoters...), leaving.ID) {
			return fmt.Errorf("voters %v nonvoters %v", s.Voters, s.NonVoters)
		}
		return nil
	})
	for _, m := range c.Running() {
		if m.CK.Node(leaving.ID) != nil {
			t.Errorf("%s still lists %s", m.ID, leaving.ID)
		}
		for _, p := range m.CK.Partitions() {
			if p.PrimaryNode == leaving.ID || slices.Contains(p.ReplicaNodes, leaving.ID) {
				t.Fatalf("%s: %s still owned by %s", m.ID, p.ID, leaving.ID)
			}
			if len(p.ReplicaNodes) != 2 {
				t.Fatalf("%s: %s has %d replicas, want 2", m.ID, p.ID, len(p.ReplicaNodes))
			}
		}
	}
	assertSameRouting(t, c, 1000)
}

// The leader can leave too: it hands leadership over first.
func TestLeaderLeaves(t *testing.T) {
	c := cktest.New(t, 3)
	c.WaitConverged()
	leader := c.Leader()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := leader.CK.Leave(ctx); err != nil {
		t.Fatalf("leader Leave: %v", err)
	}
	c.Stop(leader.Index)
	c.WaitConverged()
	for _, m := range c.Running() {
		if len(m.CK.Nodes()) != 2 {
			t.Fatalf("%s lists %d nodes, want 2", m.ID, len(m.CK.Nodes()))
		}
	}
}
