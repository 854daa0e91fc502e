package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"clusterkit.dev/services/kv-server-side/internal/store"
)

// A write whose request goes away while it waits for the owners is not
// acknowledged, and the primary returns it to no read before a majority
// holds it.
func TestCancelledWaitLeavesTheWriteUnacknowledged(t *testing.T) {
	tc := newTestCluster(t, 3, Config{ReplicationTimeout: time.Minute})
	const key = "cancelled"
	primary := tc.Index(tc.Owners(0, key)[0])
	s := tc.Server(primary)
	p, err := s.ck.GetPartition(key)
	if err != nil {
		t.Fatal(err)
	}
	rec := store.Record{Key: key, Value: []byte("v"), Version: store.Version{Epoch: p.Epoch, Seq: s.clock.now()}}

	// The write as replicateWrite makes it, but sent to an owner that
	// never answers: only the request's end can stop the wait early.
	s.unc.begin(p.Index, key, rec.Version)
	if err := s.storeOwn(p, rec); err != nil {
		t.Fatal(err)
	}
	w := &replication{r: s.repl, p: p, rec: rec, ready: 3, need: 2, targets: 1, res: make(chan repResult, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	err = w.wait(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("wait = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("wait returned %v after its context ended", d)
	}
	if !s.unc.pending(p.Index, key, rec.Version) {
		t.Fatal("the write counts as committed after a cancelled wait")
	}

	// Its other owners do not hold it; a read through the primary stores
	// it on them before answering it.
	for _, id := range p.ReplicaNodes {
		if a := tc.GetLocal(tc.Index(id), key); a.Status != 404 {
			t.Fatalf("replica %s holds the unacknowledged write: %d %s", id, a.Status, a.Body)
		}
	}
	if a := tc.Get(primary, key); a.Status != 200 || a.Value != "v" {
		t.Fatalf("read = %d %s, want 200 v", a.Status, a.Body)
	}
	if s.unc.pending(p.Index, key, rec.Version) {
		t.Fatal("the write is still uncommitted after a read had it replicated")
	}
	tc.CheckOwners(map[string]string{key: "v"})
}
