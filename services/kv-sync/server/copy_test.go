package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"clusterkit.dev/clusterkit/cktest"
)

// A new owner copies a partition from a majority of its owners, not from
// CopyFrom alone: a write that a majority took without CopyFrom must reach
// it. Here the primary misses a write that its two replicas took, both
// replicas die, and one of them is drained: its replacement can copy from
// the primary only. No read may then return the older value (the
// partition is unavailable instead), and once a replica is back the write
// is read again. (The fault suite found this with a drain and a network
// split.)
func TestNewOwnerCopiesFromAMajority(t *testing.T) {
	cfg := testConfig()
	cfg.ReReplicationDelay = time.Minute // the dead replicas keep their slots
	tc := newTestCluster(t, 5, Config{}, cktest.WithConfig(cfg))
	const key = "majority"
	p, _ := tc.c.Member(0).CK.GetPartition(key)
	owners := append([]string{p.PrimaryNode}, p.ReplicaNodes...)
	primary, r1, r2 := tc.index(owners[0]), tc.index(owners[1]), tc.index(owners[2])
	var others []int
	for _, m := range tc.c.Members() {
		if !slices.Contains(owners, m.ID) {
			others = append(others, m.Index)
		}
	}

	b, _ := json.Marshal(map[string]string{"key": key, "value": "old"})
	a := tc.do(primary, http.MethodPost, "/kv/set", b, nil)
	if a.status != http.StatusOK || a.version == nil {
		t.Fatalf("quorum write: %d %s", a.status, a.body)
	}
	// The replicas take a newer write that the primary never sees, as when
	// it is cut off from the coordinator: acknowledged by a majority.
	newer := map[string]any{"key": key, "value": "new", "version": versionJSON{a.version.Counter + 1, 7}}
	b, _ = json.Marshal(newer)
	for _, i := range []int{r1, r2} {
		if a := tc.do(i, http.MethodPost, "/kv/set", b, nil); a.status != http.StatusOK {
			t.Fatalf("replica write to %d: %d %s", i, a.status, a.body)
		}
	}

	tc.kill(r1)
	tc.kill(r2)
	b, _ = json.Marshal(map[string]string{"id": owners[1]})
	// A killed replica may have been the raft leader: the drain waits for
	// the next one.
	tc.c.Eventually("the drain accepted", func() error {
		if a := tc.do(others[0], http.MethodPost, "/cluster/drain", b, nil); a.status != http.StatusOK {
			return fmt.Errorf("drain %s: %d %s", owners[1], a.status, a.body)
		}
		return nil
	})
	// The drained replica's replacement joins, copying from the primary.
	tc.c.Eventually("a replacement joining", func() error {
		p, _ := tc.c.Member(primary).CK.GetPartition(key)
		if len(p.JoiningNodes) == 0 {
			return fmt.Errorf("partition %d: no joining owner", p.Index)
		}
		return nil
	})
	deadline := time.Now().Add(cfg.DeadTimeout + 4*time.Second)
	for time.Now().Before(deadline) {
		for _, i := range append([]int{primary}, others...) {
			if a := tc.get(i, key); a.status == http.StatusOK && a.value != "new" {
				t.Fatalf("read through %s returned %q: a write acknowledged by a majority was lost", tc.c.Member(i).ID, a.value)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}

	tc.start(r1)
	tc.c.Eventually("the write read again once a replica is back", func() error {
		for _, i := range append([]int{primary, r1}, others...) {
			if a := tc.get(i, key); a.status != http.StatusOK || a.value != "new" {
				return fmt.Errorf("read through %s: %d %q %s", tc.c.Member(i).ID, a.status, a.value, a.err)
			}
		}
		return nil
	})
}
