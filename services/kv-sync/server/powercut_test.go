package server

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"clusterkit.dev/services/kv-sync/client"
)

// A power cut of every node at once loses no acknowledged write: each
// node's store is on a crashable in-memory file system, the cut keeps of
// each only what was synced (and a random part of the rest), and once the
// nodes are back every write acknowledged before the cut reads back, or a
// newer one. Raft's own state is on disk: the cut is of the service's
// store, which is what an acknowledgement promises.
func TestPowerCutLosesNoAcknowledgedWrite(t *testing.T) {
	const nodes = 3
	var mu sync.Mutex
	fss := map[int]*vfs.MemFS{}
	for i := range nodes {
		fss[i] = vfs.NewCrashableMem()
	}
	fsOf := func(i int) vfs.FS {
		mu.Lock()
		defer mu.Unlock()
		return fss[i]
	}
	tc := newTestClusterFS(t, nodes, Config{}, fsOf)
	c := tc.newClient()

	// Six writers; each write acknowledged is recorded with its version
	// and the time of its acknowledgement.
	type ack struct {
		version client.Version
		at      time.Time
	}
	var acks []struct {
		key string
		ack
	}
	var ackMu sync.Mutex // guards acks
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var writes atomic.Int64
	for w := range 6 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(w), 1))
			for i := 0; ctx.Err() == nil; i++ {
				key, value := fmt.Sprintf("k%02d", rnd.IntN(40)), fmt.Sprintf("w%d-%d", w, i)
				opCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
				v, err := c.Set(opCtx, key, value)
				cancel()
				if err == nil {
					now := time.Now()
					ackMu.Lock()
					acks = append(acks, struct {
						key string
						ack
					}{key, ack{v, now}})
					ackMu.Unlock()
					writes.Add(1)
				}
			}
		})
	}
	time.Sleep(time.Second)

	// The cut: every node's file system as the power would leave it, taken
	// while the writers run; then the nodes stop, and start again on what
	// the cut left.
	cutAt := time.Now()
	cut := map[int]*vfs.MemFS{}
	for i := range nodes {
		cut[i] = fss[i].CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(uint64(i), 7))})
	}
	stop()
	wg.Wait()
	// The newest version of each key acknowledged before the cut.
	before := map[string]ack{}
	for _, a := range acks {
		if a.at.Before(cutAt) && before[a.key].version.Less(a.version) {
			before[a.key] = a.ack
		}
	}
	t.Logf("%d writes acknowledged, %d keys before the cut", writes.Load(), len(before))
	if len(before) < 20 {
		t.Fatalf("only %d keys written before the cut", len(before))
	}
	for i := range nodes {
		tc.Kill(i)
	}
	mu.Lock()
	fss = cut
	mu.Unlock()
	for i := range nodes {
		tc.Start(i)
	}
	tc.WaitSettled()

	// Every key reads the newest version acknowledged before the cut, or a
	// newer one (a write in flight at the cut may have reached the disks).
	rc := tc.newClient()
	for key, a := range before {
		var got client.Version
		tc.C.Eventually("read "+key, func() error {
			rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, v, err := rc.Get(rctx, key)
			got = v
			return err
		})
		if got.Less(a.version) {
			t.Errorf("%s reads version %+v after the cut; %+v was acknowledged %v before it",
				key, got, a.version, cutAt.Sub(a.at).Round(time.Millisecond))
		}
	}
}
