package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
	"clusterkit.dev/services/kit/kittest"
	"clusterkit.dev/services/kit/stream"
)

func TestEveryOwnerHoldsEveryAcknowledgedWrite(t *testing.T) {
	tc := newTestCluster(t, 3, Config{})
	want := tc.writeKeys("user", "v1", 1000)
	if len(want) != 1000 {
		t.Fatalf("%d of 1000 writes acknowledged", len(want))
	}
	tc.CheckReads(want)
	// AckAll answers after every owner stored the write.
	tc.CheckOwners(want)

	// Overwrites win everywhere, through any node.
	tc.CheckReads(tc.writeKeys("user", "v2", 100))
}

func TestDeleteIsReplicatedAsATombstone(t *testing.T) {
	tc := newTestCluster(t, 3, Config{})
	for _, key := range []string{"gone-by-post", "gone-by-delete"} {
		if a := tc.set(0, key, "v"); a.Status != http.StatusOK {
			t.Fatalf("set %s: %d %s", key, a.Status, a.Body)
		}
	}
	del := tc.Do(1, http.MethodPost, "/kv/delete", []byte(`{"key":"gone-by-post"}`), nil)
	if del.Status != http.StatusOK || del.Version == nil {
		t.Fatalf("POST /kv/delete: %d %s", del.Status, del.Body)
	}
	if a := tc.Do(2, http.MethodDelete, "/kv/key?key=gone-by-delete", nil, nil); a.Status != http.StatusOK {
		t.Fatalf("DELETE /kv/key: %d %s", a.Status, a.Body)
	}
	for _, key := range []string{"gone-by-post", "gone-by-delete"} {
		for i := range 3 {
			if a := tc.Get(i, key); a.Status != http.StatusNotFound || a.Err != "key not found" {
				t.Errorf("get %s via node %d after delete: %d %s", key, i, a.Status, a.Body)
			}
			// Every owner keeps the tombstone with its version, so an
			// older value copied later cannot bring the key back.
			if a := tc.GetLocal(i, key); a.Status != http.StatusNotFound || a.Version == nil {
				t.Errorf("local get %s on node %d: %d %s, want 404 with a version", key, i, a.Status, a.Body)
			}
		}
	}
	if a := tc.GetLocal(0, "gone-by-post"); *a.Version != *del.Version {
		t.Errorf("tombstone version %v, delete answered %v", *a.Version, *del.Version)
	}
	// Deleting a missing key is not an error: deletes are idempotent.
	if a := tc.Do(0, http.MethodPost, "/kv/delete", []byte(`{"key":"never-set"}`), nil); a.Status != http.StatusOK {
		t.Errorf("delete of a missing key: %d %s", a.Status, a.Body)
	}
}

func TestAddedNodeCopiesItsPartitions(t *testing.T) {
	tc := newTestCluster(t, 3, Config{DropAfter: 300 * time.Millisecond})
	want := tc.writeKeys("before", "v", 1000)

	// Keep writing while the new node copies: a write that reaches it (as
	// a joining owner) or its source mid-copy must not be lost.
	writers := kittest.StartWriters(4, "during", func(w int, k, v string) error {
		if a := tc.set(w%3, k, v); a.Status != http.StatusOK {
			return fmt.Errorf("%d %s", a.Status, a.Body)
		}
		return nil
	})
	added := tc.Add()
	tc.WaitSettled()
	during, failed, firstFailure := writers.Stop()
	maps.Copy(want, during)
	// A move of a primary may fail the few writes in flight (503, retry);
	// a migration that fails more than maxFailedWrites of the writes made
	// during it is a failure of the test.
	const maxFailedWrites = 0.05
	t.Logf("%d writes acknowledged and %d failed while the node joined; first failure: %v",
		len(during), failed, firstFailure)
	if len(during) == 0 {
		t.Fatal("no write was acknowledged while the node joined")
	}
	if f := float64(failed) / float64(len(during)+failed); f > maxFailedWrites {
		t.Errorf("%.1f%% of the writes made while the node joined failed, more than %.0f%%", 100*f, 100*maxFailedWrites)
	}

	tc.CheckOwnsSome(added)
	tc.CheckOwners(want)
	tc.CheckReads(want)

	// The nodes that gave partitions away delete them after DropAfter.
	tc.CheckDropped(holds)
	tc.CheckReads(want)
}

func TestKilledNodeLosesNoAcknowledgedWrite(t *testing.T) {
	cfg := kittest.Config()
	// The killed node keeps its slots while it is away: it comes back to
	// its own partitions, from its own data.
	cfg.ReReplicationDelay = time.Minute
	tc := newTestCluster(t, 3, Config{}, cktest.WithConfig(cfg))
	want := tc.writeKeys("k", "v1", 1000)

	victim := 1
	for tc.C.Member(victim).CK.IsLeader() {
		victim++
	}
	victimID := tc.C.Member(victim).ID
	primaries := 0
	for _, p := range tc.C.Member(0).CK.Partitions() {
		if p.PrimaryNode == victimID {
			primaries++
		}
	}
	if primaries == 0 {
		t.Fatalf("%s is primary of no partition: the test would prove nothing", victimID)
	}
	tc.Kill(victim)

	// Every acknowledged write still reads: keys whose primary died are
	// answered by the replicas until a replica is promoted.
	tc.CheckReads(want)

	// Once the library has promoted replicas, writes succeed again for
	// every partition; they are acknowledged by the two live owners.
	tc.C.Eventually("live primaries", func() error {
		for _, m := range tc.C.Running() {
			for _, p := range m.CK.Partitions() {
				if p.PrimaryNode == victimID {
					return fmt.Errorf("%s: %s still primary in %s's map", p.ID, victimID, m.ID)
				}
			}
		}
		return nil
	})
	tc.WaitSettled()
	updated := tc.writeKeys("k", "v2", 300)
	for k, v := range updated {
		want[k] = v
	}
	tc.CheckReads(want)

	// Restarted, the node still has what it stored before it died, and
	// catches up the writes it missed.
	tc.Start(victim)
	tc.WaitSettled()
	tc.CheckHeld(victim, want, read)
	tc.CheckOwners(want)
	tc.CheckReads(want)
}

func TestAckPrimaryReplicatesInTheBackground(t *testing.T) {
	tc := newTestCluster(t, 3, Config{Ack: AckPrimary})
	want := tc.writeKeys("async", "v", 1000)
	if len(want) != 1000 {
		t.Fatalf("%d of 1000 writes acknowledged", len(want))
	}
	// The primary answers reads, so they see every acknowledged write at
	// once; the replicas catch up shortly after.
	tc.CheckReads(want)
	tc.C.Eventually("replicas caught up", func() error {
		for k, v := range want {
			for _, id := range tc.Owners(0, k) {
				if a := tc.GetLocal(tc.Index(id), k); a.Status != http.StatusOK || a.Value != v {
					return fmt.Errorf("%s on %s: %d %s", k, id, a.Status, a.Body)
				}
			}
		}
		return nil
	})
	for i := range 3 {
		if got := tc.Metric(i, "kvss_replication_pending"); got != 0 {
			t.Errorf("node %d: kvss_replication_pending %v after catching up", i, got)
		}
	}
}

func TestForwardedRequestToANonPrimaryIsRefused(t *testing.T) {
	tc := newTestCluster(t, 3, Config{})
	key := "loop"
	owners := tc.Owners(0, key)
	primary := tc.Index(owners[0])
	other := (primary + 1) % 3
	hop := http.Header{headerForwardedBy: {"node-x"}}

	for _, req := range []struct{ method, path, body string }{
		{http.MethodGet, "/kv/get?key=" + key, ""},
		{http.MethodPost, "/kv/set", `{"key":"loop","value":"v"}`},
		{http.MethodDelete, "/kv/key?key=" + key, ""},
	} {
		var body []byte
		if req.body != "" {
			body = []byte(req.body)
		}
		a := tc.Do(other, req.method, req.path, body, hop)
		if a.Status != clusterkit.StatusNotOwner {
			t.Fatalf("%s %s forwarded to a non-primary: %d %s, want 421", req.method, req.path, a.Status, a.Body)
		}
		var nb clusterkit.NotOwnerBody
		if err := json.Unmarshal(a.Body, &nb); err != nil {
			t.Fatal(err)
		}
		ck := tc.C.Member(other).CK
		p, _ := ck.GetPartition(key)
		if nb.Primary != owners[0] || nb.Partition != p.Index || nb.MapVersion != ck.Version() || nb.Error == "" {
			t.Errorf("421 body %+v, want primary %s, partition %d, version %d", nb, owners[0], p.Index, ck.Version())
		}
		if a.Header.Get(clusterkit.HeaderMapVersion) != strconv.FormatUint(ck.Version(), 10) {
			t.Errorf("421 without the map version header")
		}
	}
	// So is a batch of forwarded ops: each op gets its 421.
	var batch []byte
	for _, o := range []op{{kind: opKindGet, key: key}, {kind: opKindSet, key: key, value: []byte("v")}} {
		batch = appendFwdOp(batch, &o)
	}
	a := tc.Do(other, http.MethodPost, "/kv/internal/forward", stream.AppendEnd(batch, 2), hop)
	if a.Status != http.StatusOK {
		t.Fatalf("forward batch: %d %q", a.Status, a.Body)
	}
	replies, err := readFwdReplies(bytes.NewReader(a.Body), 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, rep := range replies {
		var nb clusterkit.NotOwnerBody
		if rep.Status != clusterkit.StatusNotOwner || json.Unmarshal(rep.Body, &nb) != nil || nb.Primary != owners[0] {
			t.Errorf("forwarded op %d to a non-primary: %d %s", i, rep.Status, rep.Body)
		}
	}
	// The refused writes went nowhere.
	for i := range 3 {
		if a := tc.GetLocal(i, key); a.Status != http.StatusNotFound {
			t.Errorf("node %d stored the refused write: %d %s", i, a.Status, a.Body)
		}
	}
	// Without the header the same node forwards.
	if a := tc.set(other, key, "v"); a.Status != http.StatusOK {
		t.Fatalf("set via a non-primary: %d %s", a.Status, a.Body)
	}
	if got := tc.Metric(other, `kvss_requests_total{op="set",result="ok",role="forward"}`); got != 1 {
		t.Errorf("forwarded sets counted %v, want 1", got)
	}
	// It went in one batch of one write; no read was forwarded.
	if got := tc.Metric(other, `kvss_forward_batch_ops_sum{kind="write"}`); got != 1 {
		t.Errorf("forwarded batch ops %v, want 1", got)
	}
	if got := tc.Metric(other, `kvss_forward_batch_ops_count{kind="read"}`); got != 0 {
		t.Errorf("forwarded read batches %v, want 0", got)
	}
}

func TestReplicaRefusesADeposedPrimary(t *testing.T) {
	cfg := kittest.Config()
	cfg.ReplicationFactor = 2
	tc := newTestCluster(t, 3, Config{}, cktest.WithConfig(cfg))
	key := "fenced"
	ck := tc.C.Member(0).CK
	p, _ := ck.GetPartition(key)
	owners := append([]string{p.PrimaryNode}, p.ReplicaNodes...)
	replica := tc.Index(p.ReplicaNodes[0])
	outsider := -1
	for _, m := range tc.C.Members() {
		if !slices.Contains(owners, m.ID) {
			outsider = m.Index
		}
	}
	send := func(i int, epoch uint64, value string) byte {
		t.Helper()
		rec := recordForTest(key, value, epoch, 1)
		body := stream.AppendEnd(stream.AppendRecord(nil, &rec), 1)
		a := tc.Do(i, http.MethodPost, "/kv/internal/replicate", body, nil)
		if a.Status != http.StatusOK || len(a.Body) != 1 {
			t.Fatalf("replicate to node %d: %d %q", i, a.Status, a.Body)
		}
		return a.Body[0]
	}
	if p.Epoch == 0 {
		t.Fatalf("partition epoch is 0: nothing older to refuse")
	}
	if st := send(replica, p.Epoch-1, "old"); st != statusStaleEpoch {
		t.Errorf("record of epoch %d at epoch %d: status %d, want stale", p.Epoch-1, p.Epoch, st)
	}
	if a := tc.GetLocal(replica, key); a.Status != http.StatusNotFound {
		t.Errorf("stale record stored: %d %s", a.Status, a.Body)
	}
	if st := send(outsider, p.Epoch, "v"); st != statusNotOwner {
		t.Errorf("record sent to a non-owner: status %d, want not owner", st)
	}
	if st := send(replica, p.Epoch, "current"); st != statusStored {
		t.Errorf("record of the current epoch: status %d, want stored", st)
	}
	if a := tc.GetLocal(replica, key); a.Status != http.StatusOK || a.Value != "current" {
		t.Errorf("after a current record: %d %s", a.Status, a.Body)
	}
}

func TestBadRequestsChangeNothing(t *testing.T) {
	// The longest value is a megabyte: under -race on a loaded machine its
	// replication can take longer than the default 300ms lag timeout,
	// which is not what this test is about.
	tc := newTestCluster(t, 3, Config{ReplicaLagTimeout: 4 * time.Second, ReplicationTimeout: 5 * time.Second})
	tc.CheckRefused(append(kittest.BadInput(MaxKeySize, MaxValueSize, maxBody),
		kittest.Refusal{Name: "replicate garbage", Method: http.MethodPost, Path: "/kv/internal/replicate", Body: "garbage", Status: http.StatusBadRequest},
		kittest.Refusal{Name: "forward garbage", Method: http.MethodPost, Path: "/kv/internal/forward", Body: "garbage", Status: http.StatusBadRequest}))
	tc.CheckNoneHeld(holds)

	// The limits are inclusive.
	maxKey, maxValue := strings.Repeat("k", MaxKeySize), strings.Repeat("v", MaxValueSize)
	if a := tc.set(1, maxKey, maxValue); a.Status != http.StatusOK {
		t.Fatalf("set of the longest key and value: %d %.200s", a.Status, a.Body)
	}
	if a := tc.Get(2, maxKey); a.Status != http.StatusOK || a.Value != maxValue {
		t.Fatalf("get of the longest key: %d, %d bytes", a.Status, len(a.Value))
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
