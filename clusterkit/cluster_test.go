package clusterkit_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
)

func TestClustersFormAndAgree(t *testing.T) {
	for _, n := range []int{1, 3, 5, 10} {
		t.Run(fmt.Sprintf("nodes=%d", n), func(t *testing.T) {
			c := cktest.New(t, n)
			c.WaitConverged()
			assertSameRouting(t, c, 10000)
			assertSamePartitionsJSON(t, c)
		})
	}
}

// assertSameRouting checks that every running member answers GetPartition
// and GetPrimary identically for keys.
func assertSameRouting(t *testing.T, c *cktest.Cluster, keys int) {
	t.Helper()
	running := c.Running()
	ref := running[0].CK
	for i := 0; i < keys; i++ {
		key := fmt.Sprintf("key-%d", i)
		want, err := ref.GetPartition(key)
		if err != nil {
			t.Fatalf("%s GetPartition(%q): %v", running[0].ID, key, err)
		}
		wantPrimary := ref.GetPrimary(want)
		if wantPrimary == nil {
			t.Fatalf("%s: partition %s has no primary", running[0].ID, want.ID)
		}
		for _, m := range running[1:] {
			got, err := m.CK.GetPartition(key)
			if err != nil {
				t.Fatalf("%s GetPartition(%q): %v", m.ID, key, err)
			}
			if got.ID != want.ID {
				t.Fatalf("key %q: %s says %s, %s says %s", key, running[0].ID, want.ID, m.ID, got.ID)
			}
			if p := m.CK.GetPrimary(got); p == nil || p.ID != wantPrimary.ID {
				t.Fatalf("key %q: primaries differ between %s and %s", key, running[0].ID, m.ID)
			}
		}
	}
}

func assertSamePartitionsJSON(t *testing.T, c *cktest.Cluster) {
	t.Helper()
	var first []byte
	for _, m := range c.Running() {
		body := getBody(t, m.URL("/partitions"), http.StatusOK)
		if first == nil {
			first = body
			continue
		}
		if string(body) != string(first) {
			t.Fatalf("/partitions differs on %s:\n%s\nvs\n%s", m.ID, body, first)
		}
	}
}

func getBody(t *testing.T, url string, wantCode int) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != wantCode {
		t.Fatalf("GET %s: status %d, want %d: %s", url, resp.StatusCode, wantCode, b)
	}
	return b
}

func getJSON(t *testing.T, url string, wantCode int, out any) {
	t.Helper()
	if err := json.Unmarshal(getBody(t, url, wantCode), out); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func TestTenNodesHaveMaxVotersVoters(t *testing.T) {
	c := cktest.New(t, 10)
	c.WaitConverged()
	leader := c.Leader()
	var stats clusterkit.ConsensusStats
	c.Eventually("5 voters", func() error {
		getJSON(t, leader.URL("/consensus/stats"), http.StatusOK, &stats)
		if len(stats.Voters) != 5 || len(stats.NonVoters) != 5 {
			return fmt.Errorf("voters %v, nonvoters %v", stats.Voters, stats.NonVoters)
		}
		return nil
	})
	// Non-voters receive every committed change: all ten agree.
	assertSameRouting(t, c, 1000)
}

func TestFullRestartKeepsTheMap(t *testing.T) {
	c := cktest.New(t, 3)
	c.WaitConverged()
	version := c.Member(0).CK.Version()
	owners := cktest.Owners(c.Member(0).CK)
	// One node restarts from a snapshot plus the log after it, the others
	// from their logs alone.
	if err := c.Member(1).CK.Snapshot(); err != nil {
		t.Fatal(err)
	}

	c.StopAll()
	c.StartAll()
	c.WaitConverged()
	for _, m := range c.Running() {
		if v := m.CK.Version(); v != version {
			t.Errorf("%s: version %d after restart, want %d", m.ID, v, version)
		}
		if got := cktest.Owners(m.CK); !cktest.SameOwners(got, owners) {
			t.Errorf("%s: assignments changed across restart:\n got %v\nwant %v", m.ID, got, owners)
		}
	}
}

type gained struct {
	partition string
	from      string
}

func TestJoinMovesPartitionsAndFiresHook(t *testing.T) {
	c := cktest.New(t, 3)
	c.WaitConverged()
	before := c.Member(0).CK.Partitions()

	var mu sync.Mutex
	var events []gained
	m := c.Add(func(m *cktest.Member) {
		m.Init = func(ck *clusterkit.ClusterKit) {
			ck.OnPartitionChange(func(pid string, from, to *clusterkit.Node) {
				if to == nil || to.ID != m.ID {
					t.Errorf("hook on %s with copyTo %v", m.ID, to)
				}
				g := gained{partition: pid}
				if from != nil {
					g.from = from.ID
				}
				mu.Lock()
				events = append(events, g)
				mu.Unlock()
			})
		}
	})
	c.WaitConverged()

	var owned []string
	for _, p := range m.CK.Partitions() {
		if p.PrimaryNode == m.ID || slices.Contains(p.ReplicaNodes, m.ID) {
			owned = append(owned, p.ID)
		}
	}
	if len(owned) == 0 {
		t.Fatal("the new node owns no partition")
	}
	c.Eventually("a hook call per gained partition", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(events) < len(owned) {
			return fmt.Errorf("%d hook calls, %d partitions gained", len(events), len(owned))
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	for _, e := range events {
		idx, err := clusterkit.ParsePartitionID(e.partition)
		if err != nil {
			t.Fatal(err)
		}
		old := before[idx]
		if e.from == "" {
			t.Errorf("%s: copyFrom is nil, want a previous owner", e.partition)
		} else if e.from != old.PrimaryNode && !slices.Contains(old.ReplicaNodes, e.from) {
			t.Errorf("%s: copyFrom %s did not own it (owners %s %v)", e.partition, e.from, old.PrimaryNode, old.ReplicaNodes)
		}
	}
}

func TestRestartedNodeDoesNotBootstrapAgain(t *testing.T) {
	c := cktest.New(t, 3)
	c.WaitConverged()
	c.Restart(0) // node-1 founded the cluster
	c.WaitConverged()
	var stats clusterkit.ConsensusStats
	getJSON(t, c.Member(0).URL("/consensus/stats"), http.StatusOK, &stats)
	if got := len(stats.Voters); got != 3 {
		t.Fatalf("after restarting the founder: %d voters, want 3 (a second bootstrap would split the cluster)", got)
	}
	assertSameRouting(t, c, 1000)
}

func freeAddr(t *testing.T) string { return cktest.FreeAddr(t) }
