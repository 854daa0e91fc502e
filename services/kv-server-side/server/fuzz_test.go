package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/http"
	"slices"
	"testing"

	"clusterkit.dev/services/kit/stream"
	"clusterkit.dev/services/kv-server-side/internal/store"
)

// The fuzz targets of the request decoders run on their seeds in every
// `go test`; `go test -fuzz=FuzzX` explores further. No input may panic,
// and whatever a decoder accepts obeys the limits the store relies on.

func FuzzRecordFrames(f *testing.F) {
	recs := []store.Record{
		recordForTest("k", "v", 1, 1),
		{Key: "gone", Deleted: true, Version: store.Version{Epoch: 3, Seq: 1 << 57}},
		recordForTest(string(make([]byte, MaxKeySize)), "", MaxVersionNumber-1, MaxVersionNumber-1),
	}
	var all []byte
	for i := range recs {
		f.Add(stream.AppendEnd(stream.AppendRecord(nil, &recs[i]), 1))
		all = stream.AppendRecord(all, &recs[i])
	}
	f.Add(stream.AppendEnd(all, len(recs)))
	f.Add(stream.AppendEnd(nil, 0))
	f.Add([]byte{stream.FrameRecord, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := readAll(b)
		if err != nil {
			return
		}
		var again []byte
		for i := range got {
			r := &got[i]
			if r.Key == "" || len(r.Key) > MaxKeySize || len(r.Value) > MaxValueSize ||
				r.Version.Epoch >= MaxVersionNumber || r.Version.Seq >= MaxVersionNumber || r.Deleted && r.Value != nil {
				t.Fatalf("accepted record %d out of bounds: key %d bytes, value %d bytes, version %v, deleted %v",
					i, len(r.Key), len(r.Value), r.Version, r.Deleted)
			}
			again = stream.AppendRecord(again, r)
		}
		back, err := readAll(stream.AppendEnd(again, len(got)))
		if err != nil || !slices.EqualFunc(back, got, sameRecord) {
			t.Fatalf("re-encoded records decode as %v (%v), want %v", back, err, got)
		}
	})
}

func sameRecord(a, b store.Record) bool {
	return a.Key == b.Key && bytes.Equal(a.Value, b.Value) && a.Version == b.Version && a.Deleted == b.Deleted
}

func FuzzForwardBatch(f *testing.F) {
	ops := []op{
		{kind: opKindSet, key: "k", value: []byte("v")},
		{kind: opKindGet, key: "k"},
		{kind: opKindDelete, key: string(make([]byte, MaxKeySize))},
	}
	var all []byte
	for i := range ops {
		f.Add(stream.AppendEnd(appendFwdOp(nil, &ops[i]), 1))
		all = appendFwdOp(all, &ops[i])
	}
	f.Add(stream.AppendEnd(all, len(ops)))
	f.Add(stream.AppendEnd(nil, 0))
	f.Add([]byte{opKindSet, 0})
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := readFwdOps(bytes.NewReader(b))
		if err != nil {
			return
		}
		if len(got) > fwdMaxOps {
			t.Fatalf("accepted %d ops, more than %d", len(got), fwdMaxOps)
		}
		var again []byte
		for i := range got {
			o := &got[i]
			if o.key == "" || len(o.key) > MaxKeySize || len(o.value) > MaxValueSize || o.kind != opKindSet && o.value != nil {
				t.Fatalf("accepted op %d out of bounds: kind %q, key %d bytes, value %d bytes", i, o.kind, len(o.key), len(o.value))
			}
			again = appendFwdOp(again, o)
		}
		back, err := readFwdOps(bytes.NewReader(stream.AppendEnd(again, len(got))))
		if err != nil || !slices.EqualFunc(back, got, func(a, b op) bool {
			return a.kind == b.kind && a.key == b.key && bytes.Equal(a.value, b.value)
		}) {
			t.Fatalf("re-encoded ops decode as %v (%v), want %v", back, err, got)
		}
	})
}

func FuzzForwardReplies(f *testing.F) {
	one := func(status int, body string) []byte {
		b := binary.AppendUvarint(nil, uint64(status))
		b = binary.AppendUvarint(b, uint64(len(body)))
		return append(b, body...)
	}
	f.Add(byte(1), stream.AppendEnd(one(200, `{"key":"k"}`), 1))
	f.Add(byte(2), stream.AppendEnd(append(one(404, `{"error":"key not found"}`), one(503, "")...), 2))
	f.Add(byte(0), stream.AppendEnd(nil, 0))
	f.Add(byte(1), []byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, n byte, b []byte) {
		replies, err := readFwdReplies(bytes.NewReader(b), int(n))
		if err != nil {
			return
		}
		if len(replies) != int(n) {
			t.Fatalf("%d replies for %d ops", len(replies), n)
		}
		for _, r := range replies {
			if r.Status < 100 || r.Status > 599 || len(r.Body) > maxWireValue {
				t.Fatalf("accepted reply out of bounds: status %d, body %d bytes", r.Status, len(r.Body))
			}
		}
	})
}

func FuzzDecodeWrite(f *testing.F) {
	f.Add([]byte(`{"key":"k","value":"v"}`), true)
	f.Add([]byte(`{"key":"k"}`), false)
	f.Add([]byte(`{"key":"","value":"v"}`), true)
	f.Add([]byte(`{"key":"k","value":5}`), true)
	f.Add([]byte(`{"key":"\u00e9\ud800","value":null}`), true)
	f.Add([]byte(`["a","b"]`), true)
	f.Fuzz(func(t *testing.T, body []byte, withValue bool) {
		key, value, err := decodeWrite(body, withValue)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest && ae.Status != http.StatusRequestEntityTooLarge {
				t.Fatalf("refusal %v is not a 400 or 413", err)
			}
			return
		}
		if key == "" || len(key) > MaxKeySize || len(value) > MaxValueSize || !withValue && value != "" {
			t.Fatalf("accepted key of %d bytes and value of %d bytes", len(key), len(value))
		}
	})
}

func recordForTest(key, value string, epoch, seq uint64) store.Record {
	return store.Record{Key: key, Value: []byte(value), Version: store.Version{Epoch: epoch, Seq: seq}}
}

// readAll decodes the record frames b as a node decodes another's.
func readAll(b []byte) ([]store.Record, error) {
	return stream.ReadAll(bytes.NewReader(b), store.VersionOf, streamLimits)
}
