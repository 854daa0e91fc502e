package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
	"clusterkit.dev/services/kit/kittest"
	"clusterkit.dev/services/kv-sync/client"
	"clusterkit.dev/services/kv-sync/internal/batch"
)

func TestEveryOwnerHoldsEveryAcknowledgedWrite(t *testing.T) {
	tc := newTestCluster(t, 3, Config{})
	c := tc.newClient()
	want := tc.writeKeys(c, "user", "v1", 1000)
	if len(want) != 1000 {
		t.Fatalf("%d of 1000 writes acknowledged", len(want))
	}
	tc.checkQuorumReads(c, want)
	// A write returns once a majority stored it; Close waits for the
	// copies still on their way to the other owners.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	tc.CheckOwners(want)
	// Any node runs the quorum for a request without a version.
	tc.CheckReads(want)

	// Overwrites win everywhere.
	c2 := tc.newClient()
	update := tc.writeKeys(c2, "user", "v2", 100)
	tc.checkQuorumReads(c2, update)
	tc.CheckReads(update)
}

func TestRequestsWithoutVersionRunAQuorumOnTheNode(t *testing.T) {
	tc := newTestCluster(t, 3, Config{})
	// Before its first quorum, a node exports the lag of every node of its
	// map, at 0.
	for i := range 3 {
		id := tc.C.Member(i).ID
		for _, name := range []string{"kvsync_replication_lag_operations", "kvsync_replication_lag_seconds", "kvsync_replication_missed_writes_total"} {
			if got := tc.Metric(0, name+`{node="`+id+`"}`); got != 0 {
				t.Errorf("%s of %s on node 0: %v, want 0", name, id, got)
			}
		}
	}
	set := tc.Do(0, http.MethodPost, "/kv/set", []byte(`{"key":"user:1","value":"Ada"}`), nil)
	if set.Status != http.StatusOK || set.Version == nil || set.Version.Counter != 1 {
		t.Fatalf("set: %d %s", set.Status, set.Body)
	}
	for i := range 3 {
		if a := tc.Get(i, "user:1"); a.Status != http.StatusOK || a.Value != "Ada" || *a.Version != *set.Version {
			t.Fatalf("get via node %d: %d %s", i, a.Status, a.Body)
		}
	}
	again := tc.Do(1, http.MethodPost, "/kv/set", []byte(`{"key":"user:1","value":"Ada Lovelace"}`), nil)
	if again.Status != http.StatusOK || again.Version.Counter != 2 {
		t.Fatalf("second set: %d %s, want counter 2", again.Status, again.Body)
	}
	if a := tc.Do(2, http.MethodDelete, "/kv/key?key=user:1", nil, nil); a.Status != http.StatusOK {
		t.Fatalf("DELETE /kv/key: %d %s", a.Status, a.Body)
	}
	if a := tc.Do(0, http.MethodPost, "/kv/delete", []byte(`{"key":"user:2"}`), nil); a.Status != http.StatusOK {
		t.Fatalf("delete of a missing key: %d %s", a.Status, a.Body)
	}
	for i := range 3 {
		if a := tc.Get(i, "user:1"); a.Status != http.StatusNotFound || a.Err != "key not found" {
			t.Errorf("get via node %d after delete: %d %s", i, a.Status, a.Body)
		}
	}
	// The SDK client sees the same data.
	c := tc.newClient()
	if _, _, err := c.Get(context.Background(), "user:1"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("client get after delete: %v", err)
	}
	if got := tc.Metric(0, `kvsync_requests_total{op="set",result="ok",role="coordinator"}`); got != 1 {
		t.Errorf("coordinated sets on node 0: %v, want 1", got)
	}
}

func TestAddedNodeCopiesItsPartitions(t *testing.T) {
	tc := newTestCluster(t, 3, Config{DropAfter: 300 * time.Millisecond})
	c := tc.newClient()
	want := tc.writeKeys(c, "before", "v", 1000)

	// Keep writing while the new node copies: writes reach it as a joining
	// owner, and the copy merges by version. No write may fail: the join
	// takes no owner away until the new one is ready.
	const maxFailedWrites = 0
	writers := kittest.StartWriters(4, "during", func(_ int, k, v string) error {
		_, err := c.Set(context.Background(), k, v)
		return err
	})
	added := tc.Add()
	tc.WaitSettled()
	during, failed, firstErr := writers.Stop()
	maps.Copy(want, during)
	t.Logf("%d writes acknowledged while the node joined, %d failed", len(during), failed)
	if failed > maxFailedWrites {
		t.Fatalf("%d writes failed while the node joined, more than %d; first: %v", failed, maxFailedWrites, firstErr)
	}
	if len(during) < 20 {
		t.Fatalf("only %d writes while the node joined: the test proves little", len(during))
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	tc.CheckOwnsSome(added)
	tc.CheckOwners(want)
	tc.checkQuorumReads(tc.newClient(), want)

	// The nodes that gave partitions away delete them after DropAfter.
	tc.CheckDropped(holds)
}

func TestKilledNodeLosesNoAcknowledgedWrite(t *testing.T) {
	cfg := kittest.Config()
	// The killed node keeps its slots while it is away.
	cfg.ReReplicationDelay = time.Minute
	tc := newTestCluster(t, 3, Config{}, cktest.WithConfig(cfg))
	c := tc.newClient()
	want := tc.writeKeys(c, "k", "v1", 1000)

	victim := 1
	for tc.C.Member(victim).CK.IsLeader() {
		victim++
	}
	victimID := tc.C.Member(victim).ID
	tc.Kill(victim)

	// Two of three owners answer: every read and write goes on, with no
	// failover needed.
	tc.checkQuorumReads(c, want)
	for k, v := range tc.writeKeys(c, "k", "v2", 300) {
		want[k] = v
	}
	tc.checkQuorumReads(c, want)
	// The client saw the dead owner miss each of the 300 writes, and owes
	// it nothing once their failures are in.
	tc.C.Eventually("the dead owner's lag", func() error {
		for _, l := range c.Lag() {
			if l.Node == victimID {
				if l.Missed < 300 || l.Operations != 0 {
					return fmt.Errorf("lag of %s: %+v, want 300 missed and none running", victimID, l)
				}
				return nil
			}
		}
		return fmt.Errorf("no lag reported for %s: %+v", victimID, c.Lag())
	})
	// A node running the quorum of a plain HTTP write reports it on its
	// /metrics.
	live := (victim + 1) % 3
	if a := tc.Do(live, http.MethodPost, "/kv/set", []byte(`{"key":"lag","value":"v"}`), nil); a.Status != http.StatusOK {
		t.Fatalf("plain set: %d %s", a.Status, a.Body)
	}
	series := `kvsync_replication_missed_writes_total{node="` + victimID + `"} `
	tc.C.Eventually("the coordinator's lag metric", func() error {
		body := string(tc.Do(live, http.MethodGet, "/metrics", nil, nil).Body)
		for _, line := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(line, series); ok && v != "0" {
				return nil
			}
		}
		return fmt.Errorf("no %s> 0 on node %d", series, live)
	})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	// Restarted, the node still has what it stored before it died, and
	// catches up the writes it missed.
	tc.Start(victim)
	tc.WaitSettled()
	tc.CheckHeld(victim, want, read)
	tc.CheckOwners(want)
	tc.checkQuorumReads(tc.newClient(), want)
}

func TestReplicaRequests(t *testing.T) {
	cfg := kittest.Config()
	cfg.ReplicationFactor = 2
	tc := newTestCluster(t, 3, Config{}, cktest.WithConfig(cfg))
	key := "replica"
	p, _ := tc.C.Member(0).CK.GetPartition(key)
	owners := append([]string{p.PrimaryNode}, p.ReplicaNodes...)
	in, out := tc.Index(owners[0]), -1
	for _, m := range tc.C.Members() {
		if !slices.Contains(owners, m.ID) {
			out = m.Index
		}
	}
	write := func(i int, counter, writer uint64, value string) answer {
		b, _ := json.Marshal(map[string]any{"key": key, "value": value, "version": map[string]uint64{"counter": counter, "writer": writer}})
		return tc.Do(i, http.MethodPost, "/kv/set", b, nil)
	}
	if a := write(in, 5, 1, "five"); a.Status != http.StatusOK || *a.Version != (versionJSON{5, 1}) {
		t.Fatalf("replica write: %d %s", a.Status, a.Body)
	}
	// An older write is acknowledged with the newer version held, and
	// changes nothing: replica writes are idempotent and order-free.
	if a := write(in, 4, 9, "four"); a.Status != http.StatusOK || *a.Version != (versionJSON{5, 1}) {
		t.Fatalf("older replica write: %d %s, want the held version 5.1", a.Status, a.Body)
	}
	if a := tc.GetLocal(in, key); a.Status != http.StatusOK || a.Value != "five" {
		t.Fatalf("after an older write: %d %s", a.Status, a.Body)
	}
	if got := tc.Metric(in, "kvsync_stale_writes_total"); got != 1 {
		t.Errorf("stale writes counted %v, want 1", got)
	}
	// A node that does not own the partition refuses replica requests
	// with 421 and its map version, and stores nothing.
	for _, a := range []answer{write(out, 6, 1, "six"), tc.GetLocal(out, key)} {
		var nb clusterkit.NotOwnerBody
		if a.Status != clusterkit.StatusNotOwner || json.Unmarshal(a.Body, &nb) != nil ||
			nb.MapVersion != tc.C.Member(out).CK.Version() || nb.Partition != p.Index {
			t.Errorf("replica request to a non-owner: %d %s", a.Status, a.Body)
		}
	}
	if recs, _ := tc.Server(out).store.Scan(p.Index, "", 10); len(recs) != 0 {
		t.Errorf("non-owner stored %v", recs)
	}
	// The same through a batch, as the client sends them.
	send := func(i int, ops ...batch.Op) []batch.Result {
		t.Helper()
		var b []byte
		for k := range ops {
			b = batch.AppendOp(b, &ops[k])
		}
		a := tc.Do(i, http.MethodPost, "/kv/batch", batch.AppendEnd(b, len(ops)), nil)
		if a.Status != http.StatusOK {
			t.Fatalf("batch to node %d: %d %q", i, a.Status, a.Body)
		}
		res, err := batch.ReadResults(a.Body, len(ops))
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := send(in,
		batch.Op{Kind: batch.OpWrite, Key: key, Counter: 4, Writer: 1, Value: []byte("old")},
		batch.Op{Kind: batch.OpWrite, Key: key, Value: []byte("unversioned")},
		batch.Op{Kind: batch.OpRead, Key: key})
	if res[0].Status != batch.StatusOK || res[1].Status != batch.StatusInvalid ||
		res[2].Status != batch.StatusFound || string(res[2].Value) != "five" || res[2].Counter != 5 {
		t.Errorf("batch to an owner: %+v", res)
	}
	for _, r := range send(out, batch.Op{Kind: batch.OpRead, Key: key}, batch.Op{Kind: batch.OpWrite, Key: key, Counter: 9, Writer: 1}) {
		if r.Status != batch.StatusNotOwner {
			t.Errorf("batch op to a non-owner: status %d", r.Status)
		}
	}
	if recs, _ := tc.Server(out).store.Scan(p.Index, "", 10); len(recs) != 0 {
		t.Errorf("non-owner stored %v", recs)
	}

	// A versioned delete leaves a tombstone that a local read reports.
	del, _ := json.Marshal(map[string]any{"key": key, "version": map[string]uint64{"counter": 7, "writer": 1}})
	if a := tc.Do(in, http.MethodPost, "/kv/delete", del, nil); a.Status != http.StatusOK {
		t.Fatalf("replica delete: %d %s", a.Status, a.Body)
	}
	if a := tc.GetLocal(in, key); a.Status != http.StatusNotFound || a.Version == nil || *a.Version != (versionJSON{7, 1}) {
		t.Fatalf("local read of a tombstone: %d %s", a.Status, a.Body)
	}
}

func TestBadRequestsChangeNothing(t *testing.T) {
	tc := newTestCluster(t, 3, Config{})
	tc.CheckRefused(append(kittest.BadInput(MaxKeySize, MaxValueSize, maxBody),
		kittest.Refusal{Name: "version not an object", Method: http.MethodPost, Path: "/kv/set", Body: `{"key":"a","value":"v","version":"1.2"}`, Status: http.StatusBadRequest},
		kittest.Refusal{Name: "zero version", Method: http.MethodPost, Path: "/kv/set", Body: `{"key":"a","value":"v","version":{"counter":0,"writer":0}}`, Status: http.StatusBadRequest},
		kittest.Refusal{Name: "batch garbage", Method: http.MethodPost, Path: "/kv/batch", Body: "garbage", Status: http.StatusBadRequest}))
	tc.CheckNoneHeld(holds)

	// The client refuses bad input before sending anything.
	longKey := strings.Repeat("k", MaxKeySize+1)
	bigValue := strings.Repeat("v", MaxValueSize+1)
	c := tc.newClient()
	ctx := context.Background()
	if _, err := c.Set(ctx, "", "v"); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("empty key: %v", err)
	}
	if _, err := c.Set(ctx, longKey, "v"); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("long key: %v", err)
	}
	if _, err := c.Set(ctx, "a", bigValue); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("long value: %v", err)
	}
	if _, _, err := c.Get(ctx, longKey); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("get of a long key: %v", err)
	}

	// The limits are inclusive.
	maxKey, maxValue := strings.Repeat("k", MaxKeySize), strings.Repeat("v", MaxValueSize)
	if _, err := c.Set(ctx, maxKey, maxValue); err != nil {
		t.Fatalf("set of the longest key and value: %v", err)
	}
	if got, _, err := c.Get(ctx, maxKey); err != nil || got != maxValue {
		t.Fatalf("get of the longest key: %d bytes, %v", len(got), err)
	}
}

// read reads key of partition p from s's store.
func read(s *Server, p int, key string) ([]byte, bool, error) {
	rec, found, err := s.store.Get(p, key)
	return rec.Value, found, err
}

// holds reports whether s's store holds a record of partition p.
func holds(s *Server, p int) (bool, error) {
	recs, err := s.store.Scan(p, "", 1)
	return len(recs) > 0, err
}

// Every node reports the size of each partition it owns, for the leader's
// dry runs (GET /cluster/plan).
func TestNodesReportPartitionSizes(t *testing.T) {
	tc := newTestCluster(t, 3, Config{})
	for _, m := range tc.C.Members() {
		kittest.CheckPartitionSizes(t, m.URL(""), m.CK)
	}
}
