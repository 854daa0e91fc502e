package clusterkit_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
)

// Hooks run under no library lock: a hook may call back into ClusterKit,
// even through its HTTP API, however many partitions move at once.
func TestHooksMayCallBackIntoTheLibrary(t *testing.T) {
	cfg := clusterkit.LocalConfig()
	cfg.PartitionCount = 512
	cfg.MaxConcurrentMoves = 512
	var calls atomic.Int64
	// stopping is set once the test has decided, before the cluster stops:
	// a hook still running then finds its node's HTTP server shut down.
	var stopping atomic.Bool
	reenter := func(m *cktest.Member, ck *clusterkit.ClusterKit) {
		ck.OnPartitionChange(func(pid string, from, to *clusterkit.Node) {
			calls.Add(1)
			p, err := ck.GetPartition(pid)
			if err != nil {
				t.Errorf("GetPartition in a hook: %v", err)
				return
			}
			_ = ck.GetNodes(p)
			_ = ck.Partitions()
			_ = ck.Nodes()
			_ = ck.Leader()
			resp, err := http.Get(m.URL("/partitions/stats"))
			if err != nil {
				if !stopping.Load() {
					t.Errorf("HTTP in a hook: %v", err)
				}
				return
			}
			resp.Body.Close()
		})
		ck.OnPartitionEvent(func(ctx context.Context, ev clusterkit.PartitionEvent) error {
			_ = ck.Version()
			_ = ck.IsPrimary(&clusterkit.Partition{Index: ev.Partition})
			return nil
		})
	}
	c := cktest.New(t, 3, cktest.WithConfig(cfg), cktest.WithInit(reenter))
	t.Cleanup(func() { stopping.Store(true) }) // runs before the cluster's own cleanup
	c.WaitConverged()
	c.Add(func(m *cktest.Member) { m.Init = func(ck *clusterkit.ClusterKit) { reenter(m, ck) } })
	c.WaitConverged()
	if n := calls.Load(); n < 3*512 {
		t.Fatalf("%d hook calls, want at least one per owner slot (%d)", n, 3*512)
	}
}

// A hook registered before Start sees every partition of the first map.
func TestHookBeforeStartSeesTheFirstMap(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	c := cktest.New(t, 1, cktest.WithInit(func(m *cktest.Member, ck *clusterkit.ClusterKit) {
		ck.OnPartitionChange(func(pid string, from, to *clusterkit.Node) {
			mu.Lock()
			seen[pid] = true
			mu.Unlock()
		})
	}))
	c.WaitConverged()
	c.Eventually("every partition announced", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) != 16 {
			return fmt.Errorf("%d of 16 partitions announced", len(seen))
		}
		return nil
	})
}
