package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"clusterkit.dev/clusterkit/cktest"
	"clusterkit.dev/services/kit/kittest"
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
	cfg := kittest.Config()
	cfg.ReReplicationDelay = time.Minute // the dead replicas keep their slots
	tc := newTestCluster(t, 5, Config{}, cktest.WithConfig(cfg))
	const key = "majority"
	p, _ := tc.C.Member(0).CK.GetPartition(key)
	owners := append([]string{p.PrimaryNode}, p.ReplicaNodes...)
	primary, r1, r2 := tc.Index(owners[0]), tc.Index(owners[1]), tc.Index(owners[2])
	var others []int
	for _, m := range tc.C.Members() {
		if !slices.Contains(owners, m.ID) {
			others = append(others, m.Index)
		}
	}

	b, _ := json.Marshal(map[string]string{"key": key, "value": "old"})
	a := tc.Do(primary, http.MethodPost, "/kv/set", b, nil)
	if a.Status != http.StatusOK || a.Version == nil {
		t.Fatalf("quorum write: %d %s", a.Status, a.Body)
	}
	// The replicas take a newer write that the primary never sees, as when
	// it is cut off from the coordinator: acknowledged by a majority.
	newer := map[string]any{"key": key, "value": "new", "version": versionJSON{a.Version.Counter + 1, 7}}
	b, _ = json.Marshal(newer)
	for _, i := range []int{r1, r2} {
		if a := tc.Do(i, http.MethodPost, "/kv/set", b, nil); a.Status != http.StatusOK {
			t.Fatalf("replica write to %d: %d %s", i, a.Status, a.Body)
		}
	}

	tc.Kill(r1)
	tc.Kill(r2)
	b, _ = json.Marshal(map[string]string{"id": owners[1]})
	// A killed replica may have been the raft leader: the drain waits for
	// the next one.
	tc.C.Eventually("the drain accepted", func() error {
		if a := tc.Do(others[0], http.MethodPost, "/cluster/drain", b, nil); a.Status != http.StatusOK {
			return fmt.Errorf("drain %s: %d %s", owners[1], a.Status, a.Body)
		}
		return nil
	})
	// The drained replica's replacement joins, copying from the primary.
	tc.C.Eventually("a replacement joining", func() error {
		p, _ := tc.C.Member(primary).CK.GetPartition(key)
		if len(p.JoiningNodes) == 0 {
			return fmt.Errorf("partition %d: no joining owner", p.Index)
		}
		return nil
	})
	deadline := time.Now().Add(cfg.DeadTimeout + 4*time.Second)
	for time.Now().Before(deadline) {
		for _, i := range append([]int{primary}, others...) {
			if a := tc.Get(i, key); a.Status == http.StatusOK && a.Value != "new" {
				t.Fatalf("read through %s returned %q: a write acknowledged by a majority was lost", tc.C.Member(i).ID, a.Value)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}

	tc.Start(r1)
	tc.C.Eventually("the write read again once a replica is back", func() error {
		for _, i := range append([]int{primary, r1}, others...) {
			if a := tc.Get(i, key); a.Status != http.StatusOK || a.Value != "new" {
				return fmt.Errorf("read through %s: %d %q %s", tc.C.Member(i).ID, a.Status, a.Value, a.Err)
			}
		}
		return nil
	})
}
