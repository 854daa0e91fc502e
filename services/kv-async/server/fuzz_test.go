package server

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"clusterkit.dev/services/kv-async/internal/store"
)

// Fuzz targets of the request decoders; `go test` runs them on their
// seeds, `go test -fuzz FuzzX` explores.

func seedBatches() []*batchRequest {
	return []*batchRequest{
		{Sender: "node-1", Inc: 7, MapVersion: 3},
		{Sender: "node-1", Inc: 7, MapVersion: 3, Sections: []section{{Partition: 2, Epoch: 4, Probe: true}}},
		{Sender: "n", Inc: math.MaxUint64, MapVersion: 1, Sections: []section{
			{Partition: 0, Epoch: 1, From: 5, To: 9, Records: []store.Record{
				{Key: "k", Value: []byte("v"), Version: store.Version{Epoch: 1, Seq: 9}, Time: 1700000000000},
				{Key: "gone", Deleted: true, Version: store.Version{Epoch: 1, Seq: 8}, Time: -1},
				{Key: "empty", Value: []byte{}, Version: store.Version{Epoch: 1, Seq: 7}},
			}},
			{Partition: 15, Epoch: 2, Probe: true},
		}},
	}
}

// A replication batch decodes without panicking, and what decodes encodes
// back to a batch that decodes the same.
func FuzzDecodeBatchRequest(f *testing.F) {
	for _, b := range seedBatches() {
		f.Add(appendBatchRequest(nil, b))
	}
	f.Add([]byte{1, 1, 'n', 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}) // a section count the body cannot hold
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := decodeBatchRequest(b)
		if err != nil {
			return
		}
		again, err := decodeBatchRequest(appendBatchRequest(nil, req))
		if err != nil {
			t.Fatalf("re-encoded batch: %v", err)
		}
		if !reflect.DeepEqual(normalized(req), normalized(again)) {
			t.Fatalf("round trip changed the batch:\n%+v\n%+v", req, again)
		}
	})
}

// normalized makes empty and nil values alike, as the encoding does.
func normalized(req *batchRequest) *batchRequest {
	out := *req
	out.Sections = append([]section{}, req.Sections...)
	for i := range out.Sections {
		recs := append([]store.Record{}, out.Sections[i].Records...)
		for j := range recs {
			if len(recs[j].Value) == 0 {
				recs[j].Value = nil
			}
		}
		out.Sections[i].Records = recs
	}
	return &out
}

// A replication answer (read by a primary from its peer) decodes without
// panicking, and round-trips.
func FuzzDecodeBatchResponse(f *testing.F) {
	f.Add(appendBatchResponse(nil, &batchResponse{MapVersion: 4}))
	f.Add(appendBatchResponse(nil, &batchResponse{MapVersion: 4, Results: []sectionResult{
		{Partition: 1, Status: statusApplied, Cursor: 10, Applied: 3},
		{Partition: 2, Status: statusStale, Error: "epoch 1 is older than epoch 2"},
	}}))
	f.Add([]byte{1, 0, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := decodeBatchResponse(b)
		if err != nil {
			return
		}
		again, err := decodeBatchResponse(appendBatchResponse(nil, resp))
		if err != nil || !reflect.DeepEqual(resp, again) {
			t.Fatalf("round trip: %+v, then %+v, %v", resp, again, err)
		}
	})
}

// The JSON bodies of /kv/set and /kv/delete decode without panicking; the
// fast path agrees with encoding/json, which defines the API: whatever
// either accepts, the decoder returns encoding/json's key and value.
func FuzzDecodeWrites(f *testing.F) {
	for _, s := range []string{
		`{"key":"k","value":"v"}`, `{"value":"v","key":"k"}`, `{"key":"k"}`, `{"key":"\u00e9\n\"","value":""}`,
		`{"key":"k","value":"v","key":"x"}`, `{"key":"k","value":3}`, `{"key":"k","value":"v"} {}`, `["k"]`, `{`, ``,
		`{"KEY":"k","Value":"v"}`, `{"key":"\ud800","value":"v"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		post := func() (*httptest.ResponseRecorder, *http.Request) {
			return httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/kv/set", bytes.NewReader(body))
		}
		var want struct {
			Key   *string `json:"key"`
			Value *string `json:"value"`
		}
		stdErr := json.Unmarshal(body, &want)
		w, r := post()
		key, value, err := decodeSet(w, r)
		if err == nil && stdErr == nil && want.Key != nil && want.Value != nil &&
			(key != *want.Key || string(value) != *want.Value) {
			t.Fatalf("set %q: key %q value %q; encoding/json says %q, %q", body, key, value, *want.Key, *want.Value)
		}
		w, r = post()
		dkey, err := decodeDelete(w, r)
		if err == nil && stdErr == nil && want.Key != nil && dkey != *want.Key {
			t.Fatalf("delete %q: key %q; encoding/json says %q", body, dkey, *want.Key)
		}
	})
}
