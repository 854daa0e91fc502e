package server

import (
	"math"
	"testing"

	"clusterkit.dev/services/kv-sync/internal/batch"
)

// FuzzDecodeWrite: any body either is refused or decodes into a write the
// store can take: a key within the limits, a value within the limit, and a
// version, if any, that can still be exceeded.
func FuzzDecodeWrite(f *testing.F) {
	f.Add([]byte(`{"key":"k","value":"v"}`), true)
	f.Add([]byte(`{"key":"k","value":"v","version":{"counter":18446744073709551615,"writer":1}}`), true)
	f.Add([]byte(`{"key":"","value":"v"}`), true)
	f.Add([]byte(`{"key":"k","version":{"counter":3,"writer":0}}`), false)
	f.Add([]byte(`[]`), false)
	f.Fuzz(func(t *testing.T, body []byte, withValue bool) {
		req, err := decodeWrite(body, withValue)
		if err != nil {
			return
		}
		if req.Key == nil || *req.Key == "" || len(*req.Key) > MaxKeySize {
			t.Fatalf("%q: accepted key %v", body, req.Key)
		}
		if withValue && (req.Value == nil || len(*req.Value) > MaxValueSize) {
			t.Fatalf("%q: accepted value of %v", body, req.Value)
		}
		if req.Version != nil && req.Version.Counter == math.MaxUint64 {
			t.Fatalf("%q: accepted a version that cannot be exceeded", body)
		}
	})
}

// FuzzReadOps: any batch body is refused or decodes into at most MaxOps
// ops within the decoder's limits, which encode back to the same ops.
func FuzzReadOps(f *testing.F) {
	var op batch.Op
	op.Kind, op.Key, op.Counter, op.Writer, op.Value = batch.OpWrite, "k", 2, 9, []byte("v")
	f.Add(batch.AppendEnd(batch.AppendOp(nil, &op), 1))
	read := batch.Op{Kind: batch.OpRead, Key: "k"}
	f.Add(batch.AppendEnd(batch.AppendOp(batch.AppendOp(nil, &read), &op), 2))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		ops, err := batch.ReadOps(body)
		if err != nil {
			return
		}
		if len(ops) > batch.MaxOps {
			t.Fatalf("%d ops accepted", len(ops))
		}
		var again []byte
		for i := range ops {
			if len(ops[i].Key) > batch.MaxKey || len(ops[i].Value) > batch.MaxValue {
				t.Fatalf("op %d beyond the limits accepted", i)
			}
			again = batch.AppendOp(again, &ops[i])
		}
		back, err := batch.ReadOps(batch.AppendEnd(again, len(ops)))
		if err != nil || len(back) != len(ops) {
			t.Fatalf("re-encoded ops do not decode: %v", err)
		}
	})
}
