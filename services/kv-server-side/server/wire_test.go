package server

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"pgregory.net/rapid"

	"clusterkit.dev/services/kv-server-side/internal/store"
)

func recordForTest(key, value string, epoch, seq uint64) store.Record {
	return store.Record{Key: key, Value: []byte(value), Version: store.Version{Epoch: epoch, Seq: seq}}
}

func genRecord() *rapid.Generator[store.Record] {
	return rapid.Custom(func(t *rapid.T) store.Record {
		r := store.Record{
			Key:     rapid.StringN(1, 40, -1).Draw(t, "key"),
			Version: store.Version{Epoch: rapid.Uint64Max(MaxVersionNumber-1).Draw(t, "epoch"), Seq: rapid.Uint64Max(MaxVersionNumber-1).Draw(t, "seq")},
			Deleted: rapid.Bool().Draw(t, "deleted"),
		}
		if !r.Deleted {
			r.Value = rapid.SliceOfN(rapid.Byte(), 0, 200).Draw(t, "value")
		}
		return r
	})
}

func readAll(b []byte) ([]store.Record, error) {
	fr := newFrameReader(bytes.NewReader(b))
	var out []store.Record
	for {
		r, err := fr.next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
}

func TestFramesRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		recs := rapid.SliceOfN(genRecord(), 0, 20).Draw(t, "records")
		var b []byte
		for i := range recs {
			b = appendRecordFrame(b, &recs[i])
		}
		b = appendEndFrame(b, len(recs))
		got, err := readAll(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(recs) {
			t.Fatalf("decoded %d records, sent %d", len(got), len(recs))
		}
		for i := range recs {
			w, g := recs[i], got[i]
			if g.Key != w.Key || g.Version != w.Version || g.Deleted != w.Deleted || !bytes.Equal(g.Value, w.Value) {
				t.Fatalf("record %d: got %+v, want %+v", i, g, w)
			}
		}
	})
}

// TestCutStreamsAreDetected checks that a copy cut at any byte fails
// instead of passing for a smaller partition.
func TestCutStreamsAreDetected(t *testing.T) {
	recs := []store.Record{recordForTest("a", "1", 1, 1), {Key: "b", Version: store.Version{Epoch: 2, Seq: 3}, Deleted: true}, recordForTest("c", "three", 1, 2)}
	var b []byte
	for i := range recs {
		b = appendRecordFrame(b, &recs[i])
	}
	b = appendEndFrame(b, len(recs))
	for cut := 0; cut < len(b); cut++ {
		if _, err := readAll(b[:cut]); err == nil {
			t.Fatalf("stream cut at byte %d of %d decoded without error", cut, len(b))
		}
	}
	// An end frame that miscounts is refused too.
	bad := appendEndFrame(appendRecordFrame(nil, &recs[0]), 2)
	if _, err := readAll(bad); err == nil {
		t.Fatal("end frame counting 2 after 1 record accepted")
	}
	// So is a field longer than any record can hold.
	huge := []byte{frameRecord, 0xff, 0xff, 0xff, 0xff, 0x0f}
	if _, err := readAll(huge); err == nil || errors.Is(err, errTruncated) {
		t.Fatalf("oversized key: %v", err)
	}
}
