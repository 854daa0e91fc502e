package placement

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// churnStats is what TestPrimaryChanges measures over many single joins or
// leaves: how many primaries changed beyond the least possible (the new
// node's primaries for a join, the leaving node's for a leave).
type churnStats struct {
	steps, exact, worstExtra int
	extra, least             int // totals over all steps
	worst                    string
}

func (c *churnStats) add(changed, least int, what string) {
	c.steps++
	c.extra += changed - least
	c.least += least
	if changed == least {
		c.exact++
	}
	if changed-least > c.worstExtra {
		c.worstExtra = changed - least
		c.worst = what
	}
}

// TestPrimaryChanges measures primary changes over a fixed set of
// pseudo-random join and leave sequences (equal weights, no zones) and
// checks them against the numbers stated in DESIGN.md. The sequences are
// seeded, so the test is deterministic; it guards against regressions.
func TestPrimaryChanges(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var joins, leaves churnStats
	sequences := 600
	if testing.Short() {
		sequences = 100
	}
	for range sequences {
		parts := 1 + rng.IntN(300)
		if rng.IntN(4) == 0 {
			parts = 1 + rng.IntN(4096)
		}
		cfg := Config{Partitions: parts, ReplicationFactor: 1 + rng.IntN(5)}
		nodes := makeNodes(rng.IntN(13))
		tab := mustCompute(t, nil, nodes, cfg)
		nextID := len(nodes)
		for range 6 {
			what := fmt.Sprintf("%+v, %d nodes", cfg, len(nodes))
			if len(nodes) == 0 || rng.IntN(2) == 0 {
				id := fmt.Sprintf("node-%04d", nextID)
				nextID++
				joined := append(nodes[:len(nodes):len(nodes)], Node{ID: id})
				next := mustCompute(t, tab, joined, cfg)
				_, primaries := tally(next, joined)
				_, changed := Diff(tab, next)
				joins.add(changed, primaries[id], "join, "+what)
				tab, nodes = next, joined
				continue
			}
			id := nodes[rng.IntN(len(nodes))].ID
			rest := without(nodes, id)
			next := mustCompute(t, tab, rest, cfg)
			held := 0
			for _, part := range tab {
				if part.Primary() == id {
					held++
				}
			}
			_, changed := Diff(tab, next)
			leaves.add(changed, held, "leave, "+what)
			tab, nodes = next, rest
		}
	}
	for _, c := range []struct {
		name      string
		stats     churnStats
		exactPct  float64 // at least this share of steps change the least possible
		extraPct  float64 // total extra changes at most this share of the least
		worstStep int     // no step has more extra changes than this
	}{
		{"join", joins, 99.5, 0.1, 2},
		{"leave", leaves, 95, 0.1, 3},
	} {
		s := c.stats
		exact := 100 * float64(s.exact) / float64(s.steps)
		extra := 100 * float64(s.extra) / float64(max(s.least, 1))
		t.Logf("%s: %d steps, %.2f%% exact, extra changes %.2f%% of the least, worst +%d (%s)",
			c.name, s.steps, exact, extra, s.worstExtra, s.worst)
		if exact < c.exactPct || extra > c.extraPct || s.worstExtra > c.worstStep {
			t.Errorf("%s: primary changes regressed", c.name)
		}
	}
}
