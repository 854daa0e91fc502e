package server

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"clusterkit.dev/services/kv-async/internal/store"
)

// sendBatch posts a hand-made replication batch to a node.
func sendBatch(t *testing.T, addr string, req batchRequest) []sectionResult {
	t.Helper()
	resp, err := http.Post("http://"+addr+pathReplicate, contentTypeBatch, bytes.NewReader(appendBatchRequest(nil, &req)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("replicate: %s", resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decodeBatchResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Results) != len(req.Sections) {
		t.Fatalf("%d results for %d sections", len(out.Results), len(req.Sections))
	}
	return out.Results
}

// TestReplicaFencesAndOrdersBatches drives a replica's receiving side with
// hand-made batches, as a primary (current or deposed) would send them.
func TestReplicaFencesAndOrdersBatches(t *testing.T) {
	tc := newCluster(t, 2, Config{})
	a, b := tc.Member(0), tc.Member(1)
	// A partition b is a replica of, and one it is primary of.
	replicaOf, primaryOf := -1, -1
	for _, p := range b.CK.Partitions() {
		switch {
		case p.PrimaryNode == a.ID && replicaOf < 0:
			replicaOf = p.Index
		case p.PrimaryNode == b.ID && primaryOf < 0:
			primaryOf = p.Index
		}
	}
	if replicaOf < 0 || primaryOf < 0 {
		t.Fatalf("no partition with primary %s and one with primary %s", a.ID, b.ID)
	}
	epoch := b.CK.Partitions()[replicaOf].Epoch
	st := tc.server(1).Store()
	get := func(key string) string {
		rec, found, err := st.Get(replicaOf, key)
		if err != nil {
			t.Fatal(err)
		}
		if !found {
			return ""
		}
		return string(rec.Value)
	}
	rec := func(key, value string, e, seq uint64) store.Record {
		return store.Record{Key: key, Value: []byte(value), Version: store.Version{Epoch: e, Seq: seq}}
	}
	// A sender incarnation of its own, so the real primary's cursor is
	// not disturbed.
	batch := func(secs ...section) batchRequest {
		return batchRequest{Sender: a.ID, Inc: 42, MapVersion: b.CK.Version(), Sections: secs}
	}
	// The map's epoch: a replica refuses a newer one than its map allows,
	// and the older one below is then that of a deposed primary.
	newer, epoch := epoch, epoch-1

	res := sendBatch(t, b.HTTPAddr(), batch(section{Partition: replicaOf, Epoch: newer, Probe: true}))
	if res[0].Status != statusCursor || res[0].Cursor != 0 {
		t.Fatalf("first probe: %+v, want cursor 0", res[0])
	}
	res = sendBatch(t, b.HTTPAddr(), batch(section{Partition: replicaOf, Epoch: newer, From: 0, To: 10,
		Records: []store.Record{rec("f1", "new", newer, 10)}}))
	if res[0].Status != statusApplied || res[0].Cursor != 10 || get("f1") != "new" {
		t.Fatalf("batch from the newer epoch: %+v, f1=%q", res[0], get("f1"))
	}

	// A deposed primary (older epoch) is refused, even though the map's
	// epoch would allow it: the replica has seen the newer one.
	res = sendBatch(t, b.HTTPAddr(), batch(section{Partition: replicaOf, Epoch: epoch, From: 10, To: 11,
		Records: []store.Record{rec("f2", "stale", epoch, 11)}}))
	if res[0].Status != statusStale || get("f2") != "" {
		t.Fatalf("batch from the older epoch: %+v, f2=%q; want refused", res[0], get("f2"))
	}

	// Records must follow what the replica holds: a gap is refused with
	// the replica's cursor, so the primary resends from there.
	res = sendBatch(t, b.HTTPAddr(), batch(section{Partition: replicaOf, Epoch: newer, From: 50, To: 60,
		Records: []store.Record{rec("f3", "after-gap", newer, 60)}}))
	if res[0].Status != statusGap || res[0].Cursor != 10 || get("f3") != "" {
		t.Fatalf("batch after a gap: %+v, f3=%q; want gap at cursor 10", res[0], get("f3"))
	}

	// Applying is idempotent and keeps the newest version of a key.
	res = sendBatch(t, b.HTTPAddr(), batch(section{Partition: replicaOf, Epoch: newer, From: 0, To: 12,
		Records: []store.Record{rec("f1", "older", newer, 5), rec("f1", "new", newer, 10), rec("f4", "x", newer, 12)}}))
	if res[0].Status != statusApplied || res[0].Cursor != 12 || get("f1") != "new" || get("f4") != "x" {
		t.Fatalf("replayed batch: %+v, f1=%q f4=%q; want f1 still new", res[0], get("f1"), get("f4"))
	}
	del := store.Record{Key: "f4", Version: store.Version{Epoch: newer, Seq: 13}, Deleted: true}
	res = sendBatch(t, b.HTTPAddr(), batch(section{Partition: replicaOf, Epoch: newer, From: 12, To: 13, Records: []store.Record{del}}))
	if r, found, _ := st.Get(replicaOf, "f4"); res[0].Status != statusApplied || !found || !r.Deleted {
		t.Fatalf("tombstone: %+v, record %+v; want a tombstone", res[0], r)
	}

	// The cursor survives a restart of the replica.
	tc.kill(1)
	tc.Start(1)
	tc.WaitConverged()
	res = sendBatch(t, b.HTTPAddr(), batch(section{Partition: replicaOf, Epoch: newer, Probe: true}))
	if res[0].Status != statusCursor || res[0].Cursor != 13 {
		t.Fatalf("probe after restart: %+v, want cursor 13", res[0])
	}

	// A node refuses sections for a partition it does not replicate, and
	// bad records; other sections of the same batch still apply.
	res = sendBatch(t, b.HTTPAddr(), batch(
		section{Partition: primaryOf, Epoch: newer, From: 0, To: 1, Records: []store.Record{rec("g", "x", newer, 1)}},
		section{Partition: replicaOf, Epoch: newer, From: 13, To: 14, Records: []store.Record{rec("", "no key", newer, 14)}},
		section{Partition: replicaOf, Epoch: newer, From: 13, To: 15, Records: []store.Record{rec("f5", "ok", newer, 15)}},
	))
	if res[0].Status != statusNotOwner || res[1].Status != statusBadRecord || res[2].Status != statusApplied {
		t.Fatalf("mixed batch: %+v", res)
	}
	if st = tc.server(1).Store(); get("f5") != "ok" {
		t.Fatalf("f5 = %q after the mixed batch", get("f5"))
	}
}
