package server

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"clusterkit.dev/clusterkit/cktest"
	"clusterkit.dev/services/kit/kittest"
)

// TestReadsNeverMissAnAcknowledgedWrite checks the README's read guarantee
// while a node dies and comes back: concurrent clients set and get keys
// through random running nodes, and every successful read must return the
// newest write of its key acknowledged before the read began, or a newer
// one. The killed node is primary of some of the keys, so their reads go
// through the replicas' fallback and then through a promoted replica.
func TestReadsNeverMissAnAcknowledgedWrite(t *testing.T) {
	cfg := kittest.Config()
	cfg.ReReplicationDelay = time.Minute
	tc := newTestCluster(t, 3, Config{}, cktest.WithConfig(cfg))

	victim := 1
	for tc.C.Member(victim).CK.IsLeader() {
		victim++
	}
	// Two keys per primary.
	var keys []string
	perNode := map[string]int{}
	for i := 0; len(keys) < 6; i++ {
		k := fmt.Sprintf("key-%d", i)
		primary := tc.Owners(0, k)[0]
		if perNode[primary] < 2 {
			perNode[primary]++
			keys = append(keys, k)
		}
	}

	var (
		mu      sync.Mutex
		acked   = map[string][]ackedWrite{}
		reads   []observedRead
		failed  int
		killed  time.Time
		stopped = make(chan struct{})
	)
	var wg sync.WaitGroup
	for c := range 6 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stopped:
					return
				default:
				}
				key := keys[rand.IntN(len(keys))]
				node := tc.randomRunning()
				call := time.Now()
				if rand.IntN(2) == 0 {
					a := tc.set(node, key, fmt.Sprintf("c%d-%d", c, n))
					mu.Lock()
					if a.Status == http.StatusOK && a.Version != nil {
						acked[key] = append(acked[key], ackedWrite{*a.Version, time.Now()})
					} else {
						failed++
					}
					mu.Unlock()
					continue
				}
				a := tc.Get(node, key)
				mu.Lock()
				switch {
				case a.Status == http.StatusOK && a.Version != nil:
					reads = append(reads, observedRead{key, call, true, *a.Version, node})
				case a.Status == http.StatusNotFound:
					reads = append(reads, observedRead{key: key, call: call, node: node})
				default:
					failed++
				}
				mu.Unlock()
			}
		})
	}

	time.Sleep(1500 * time.Millisecond)
	mu.Lock()
	killed = time.Now()
	mu.Unlock()
	tc.Kill(victim)
	time.Sleep(3 * time.Second)
	tc.Start(victim)
	time.Sleep(1500 * time.Millisecond)
	close(stopped)
	wg.Wait()

	afterKill := 0
	for _, r := range reads {
		if r.call.After(killed) {
			afterKill++
		}
	}
	stale := staleReads(acked, reads)
	for _, v := range stale[:min(len(stale), 10)] {
		t.Error(v)
	}
	if len(stale) > 10 {
		t.Errorf("and %d more stale reads", len(stale)-10)
	}
	writes := 0
	for _, ws := range acked {
		writes += len(ws)
	}
	t.Logf("%d acknowledged writes, %d reads (%d after the kill), %d failed requests", writes, len(reads), afterKill, failed)
	if writes < 100 || afterKill < 50 {
		t.Fatalf("%d writes and %d reads after the kill: the history proves little", writes, afterKill)
	}
}

// ackedWrite is a write the service acknowledged, with its version.
type ackedWrite struct {
	v    versionJSON
	done time.Time // when the answer arrived
}

// observedRead is a successful read: found with version v, or a 404.
type observedRead struct {
	key   string
	call  time.Time // when the request was sent
	found bool
	v     versionJSON
	node  int
}

// staleReads describes each read that returned an older version than the
// newest write of its key acknowledged before the read was sent (or
// nothing, when there was one).
func staleReads(acked map[string][]ackedWrite, reads []observedRead) []string {
	older := func(a, b versionJSON) bool {
		return a.Epoch < b.Epoch || a.Epoch == b.Epoch && a.Seq < b.Seq
	}
	var out []string
	for _, r := range reads {
		var newest *versionJSON
		for _, w := range acked[r.key] {
			if w.done.Before(r.call) && (newest == nil || older(*newest, w.v)) {
				newest = &w.v
			}
		}
		switch {
		case newest == nil:
		case !r.found:
			out = append(out, fmt.Sprintf("read of %s through node %d found nothing; write %+v was acknowledged before it began", r.key, r.node, *newest))
		case older(r.v, *newest):
			out = append(out, fmt.Sprintf("read of %s through node %d returned version %+v; %+v was acknowledged before it began", r.key, r.node, r.v, *newest))
		}
	}
	return out
}

// TestStaleReadsAreFound makes sure the check above can fail.
func TestStaleReadsAreFound(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	acked := map[string][]ackedWrite{"x": {
		{versionJSON{Epoch: 1, Seq: 10}, at(10)},
		{versionJSON{Epoch: 2, Seq: 5}, at(20)}, // a new primary's write: newer despite the lower seq
	}}
	reads := []observedRead{
		{key: "x", call: at(5)}, // before any write: nothing is right
		{key: "x", call: at(15), found: true, v: versionJSON{Epoch: 1, Seq: 10}},
		{key: "x", call: at(15), found: true, v: versionJSON{Epoch: 2, Seq: 5}}, // a newer write in flight
		{key: "y", call: at(30)},
	}
	if got := staleReads(acked, reads); len(got) != 0 {
		t.Fatalf("fresh reads reported: %q", got)
	}
	stale := []observedRead{
		{key: "x", call: at(25), found: true, v: versionJSON{Epoch: 1, Seq: 10}},
		{key: "x", call: at(25)},
		{key: "x", call: at(15), found: true, v: versionJSON{Epoch: 1, Seq: 9}},
	}
	if got := staleReads(acked, stale); len(got) != len(stale) {
		t.Fatalf("%d of %d stale reads reported: %q", len(got), len(stale), got)
	}
}
