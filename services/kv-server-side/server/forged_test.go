package server

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"clusterkit.dev/services/kit/stream"
	"clusterkit.dev/services/kv-server-side/internal/store"
)

// Forged replication records are refused before they reach the store, and
// none of them hides a later acknowledged write or breaks the store: after
// them, writes of the same key are acknowledged and held by every owner,
// and reads through every node return them.
func TestForgedReplicationIsRefused(t *testing.T) {
	tc := newTestCluster(t, 3, Config{})
	key := "target"
	p, _ := tc.C.Member(0).CK.GetPartition(key)
	primary, replica := tc.Index(p.PrimaryNode), tc.Index(p.ReplicaNodes[0])
	send := func(i int, recs ...store.Record) answer {
		t.Helper()
		var body []byte
		for k := range recs {
			body = stream.AppendRecord(body, &recs[k])
		}
		return tc.Do(i, http.MethodPost, "/kv/internal/replicate", stream.AppendEnd(body, len(recs)), nil)
	}
	good := recordForTest(key, "forged", p.Epoch, 1)
	ahead := uint64(time.Now().Add(time.Hour).UnixMilli()) << 16
	refused := []struct {
		name string
		rec  store.Record
	}{
		{"empty key", recordForTest("", "v", p.Epoch, 1)},
		{"64 KiB key", recordForTest(strings.Repeat("k", 64<<10), "v", p.Epoch, 1)},
		{"key over the limit", recordForTest(strings.Repeat("k", MaxKeySize+1), "v", p.Epoch, 1)},
		{"value over the limit", recordForTest(key, strings.Repeat("v", MaxValueSize+1), p.Epoch, 1)},
		{"seq that cannot be exceeded", recordForTest(key, "forged", p.Epoch, 1<<64-1)},
		{"seq at the bound", recordForTest(key, "forged", p.Epoch, MaxVersionNumber)},
		{"seq an hour ahead", recordForTest(key, "forged", p.Epoch, ahead)},
		{"epoch that cannot be exceeded", recordForTest(key, "forged", 1<<64-1, 1)},
	}
	for _, c := range refused {
		for _, i := range []int{primary, replica} {
			// A bad record refuses its whole batch, the good one with it.
			if a := send(i, good, c.rec); a.Status != http.StatusBadRequest || a.Err == "" {
				t.Errorf("%s to node %d: %d %.200s, want 400 with a JSON error", c.name, i, a.Status, a.Body)
			}
		}
	}
	// A newer epoch than the node's map: not owner (the map is behind, or
	// the epoch is forged), nothing stored.
	if a := send(replica, recordForTest(key, "forged", p.Epoch+1, 1)); a.Status != http.StatusOK || string(a.Body) != string([]byte{statusNotOwner}) {
		t.Errorf("newer epoch: %d %q, want 200 with status not owner", a.Status, a.Body)
	}
	// A record of the current epoch sent to the primary, which alone
	// numbers that epoch's writes, within the clock bound: refused.
	soon := uint64(time.Now().Add(MaxClockSkew/2).UnixMilli()) << 16
	if a := send(primary, recordForTest(key, "forged", p.Epoch, soon)); a.Status != http.StatusOK || string(a.Body) != string([]byte{statusNotOwner}) {
		t.Errorf("current epoch to the primary: %d %q, want 200 with status not owner", a.Status, a.Body)
	}
	for i := range 3 {
		if recs, err := tc.Server(i).store.Scan(p.Index, "", 10); err != nil || len(recs) > 0 {
			t.Fatalf("node %d holds %v after forged records (%v)", i, recs, err)
		}
	}

	// Later writes of the key are acknowledged, stored by every owner and
	// read back through every node; other keys too.
	for i := range 3 {
		v := "real-" + string(rune('a'+i))
		if a := tc.set(i, key, v); a.Status != http.StatusOK {
			t.Fatalf("set via node %d: %d %s", i, a.Status, a.Body)
		}
		for j := range 3 {
			if a := tc.Get(j, key); a.Status != http.StatusOK || a.Value != v {
				t.Fatalf("get via node %d after set via node %d: %d %s, want %s", j, i, a.Status, a.Body, v)
			}
		}
	}
	tc.CheckOwners(map[string]string{key: "real-c"})
	want := tc.writeKeys("after", "v", 100)
	tc.CheckReads(want)
	tc.CheckOwners(want)
}

// A primary whose clock reading is below a sequence number the key already
// holds from the same epoch would have its write dropped while
// acknowledging it; replicated records cannot put such a number there
// (TestForgedReplicationIsRefused), and the ceiling follows the clock.
func TestSeqCeilingFollowsTheClock(t *testing.T) {
	now := time.Now()
	c := newClock(0)
	if got, ceiling := c.now(), seqCeiling(now); got > ceiling {
		t.Fatalf("a clock reading %d is above the ceiling %d", got, ceiling)
	}
	if seqCeiling(now.Add(time.Second)) <= seqCeiling(now) {
		t.Fatal("the ceiling does not grow with time")
	}
	if seqCeiling(now) >= MaxVersionNumber {
		t.Fatal("the ceiling reaches MaxVersionNumber")
	}
}
