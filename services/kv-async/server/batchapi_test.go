package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kv-async/internal/batch"
)

// postBatch sends body to base's POST /kv/batch and returns the answer's
// status and body.
func postBatch(t *testing.T, base string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post(base+"/kv/batch", batch.ContentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// A batch that cannot be decoded is refused whole with a JSON error; a
// batch that can is judged op by op, each as its single request would be,
// and only the accepted ops are stored.
func TestBatchJudgesEachOp(t *testing.T) {
	tc := newCluster(t, 2, Config{})
	c := tc.client()
	ctx := context.Background()
	primaryOf := func(k string) string {
		r, err := c.SDK().Route(k)
		if err != nil {
			t.Fatal(err)
		}
		return r.Primary.ID
	}
	// keyOf returns the first key prefix-<i> whose primary is (or, with
	// mine false, is not) target.
	keyOf := func(prefix, target string, mine bool) string {
		for i := 0; ; i++ {
			if k := fmt.Sprintf("%s-%d", prefix, i); (primaryOf(k) == target) == mine {
				return k
			}
		}
	}
	target := primaryOf("x")
	r, _ := c.SDK().Route("x")
	prim := "http://" + r.Primary.IP
	a, gone, neverSet := keyOf("a", target, true), keyOf("gone", target, true), keyOf("never-set", target, true)
	other := keyOf("other", target, false)
	if err := c.Set(ctx, gone, "x"); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name string
		body []byte
		code int
	}{
		{"empty body", nil, 400},
		{"garbage", []byte("garbage"), 400},
		{"no ops", []byte{batch.Format, 0}, 400},
		{"truncated", batch.AppendRequest(nil, []batch.Op{{Kind: batch.Set, Key: []byte("k"), Value: []byte("v")}})[:5], 400},
		{"too many ops", batch.AppendRequest(nil, make([]batch.Op, batch.MaxOps+1)), 400},
		{"body over the limit", batch.AppendRequest(nil, []batch.Op{{Kind: batch.Set, Key: []byte("k"), Value: make([]byte, maxOpsBody)}}), 413},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, b := postBatch(t, prim, tt.body)
			var body clusterkit.ErrorBody
			if code != tt.code || json.Unmarshal(b, &body) != nil || body.Error == "" {
				t.Fatalf("status %d %s; want %d with a JSON error", code, b, tt.code)
			}
		})
	}

	sent := []batch.Op{
		{Kind: batch.Set, Key: []byte(a), Value: []byte("1")},
		{Kind: batch.Set, Key: []byte(""), Value: []byte("1")},
		{Kind: batch.Set, Key: bytes.Repeat([]byte("k"), MaxKeyBytes+1), Value: []byte("1")},
		{Kind: batch.Set, Key: []byte("big"), Value: make([]byte, MaxValueBytes+1)},
		{Kind: batch.Set, Key: []byte(other), Value: []byte("1")},
		{Kind: batch.Delete, Key: []byte(gone)},
		{Kind: batch.Delete, Key: []byte(neverSet)},
		{Kind: batch.Set, Key: []byte(a), Value: []byte("2")}, // the later op on a key wins
	}
	code, b := postBatch(t, prim, batch.AppendRequest(nil, sent))
	if code != 200 {
		t.Fatalf("batch: status %d %s", code, b)
	}
	results, err := batch.DecodeAnswer(b, len(sent))
	if err != nil {
		t.Fatal(err)
	}
	wantCodes := []int{200, 400, 413, 413, clusterkit.StatusNotOwner, 200, 200, 200}
	for i, op := range sent {
		if results[i].Code != wantCodes[i] {
			t.Errorf("op %d (%s %.10q): %+v, want code %d", i, string(op.Kind), op.Key, results[i], wantCodes[i])
		}
		if results[i].Code != 200 && results[i].Message == "" {
			t.Errorf("op %d failed without a message", i)
		}
	}
	if !results[5].Existed || results[6].Existed {
		t.Errorf("deletes: existed %v for a set key, %v for a missing one; want true, false", results[5].Existed, results[6].Existed)
	}
	if results[7].Seq <= results[0].Seq {
		t.Errorf("versions of the two sets of %s: %+v then %+v, want increasing", a, results[0], results[7])
	}
	if got, err := c.Get(ctx, a); err != nil || got != "2" {
		t.Fatalf("%s = %q, %v; want the later op's 2", a, got, err)
	}
	for _, k := range []string{gone, "big", other} {
		if got, err := c.Get(ctx, k); err == nil {
			t.Fatalf("%q = %q after a refused or deleting op; want not found", k, got)
		}
	}
}

// Concurrent writes of one client to one primary share batches, and each
// gets its own outcome.
func TestClientBatchesConcurrentWrites(t *testing.T) {
	tc := newCluster(t, 1, Config{})
	c := tc.client()
	ctx := context.Background()
	const workers, each = 32, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if err := c.Set(ctx, fmt.Sprintf("w%d-%d", w, i), fmt.Sprint(w*1000+i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for w := range workers {
		for i := range each {
			if got, err := c.Get(ctx, fmt.Sprintf("w%d-%d", w, i)); err != nil || got != fmt.Sprint(w*1000+i) {
				t.Fatalf("w%d-%d = %q, %v", w, i, got, err)
			}
		}
	}
	node := tc.Running()[0]
	ops := metricValue(t, node, `kvasync_batch_ops_total{op="set",result="ok"}`)
	batches := metricValue(t, node, `kvasync_requests_total{op="batch",result="ok",role="primary"}`)
	if ops != workers*each {
		t.Fatalf("%v batched sets counted, want %d", ops, workers*each)
	}
	if batches >= ops {
		t.Fatalf("%v batches for %v writes of %d concurrent callers: no write shared a batch", batches, ops, workers)
	}
	t.Logf("%v writes in %v batches", ops, batches)

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "after-close", "x"); err == nil {
		t.Fatal("a write through a closed client succeeded")
	}
}
