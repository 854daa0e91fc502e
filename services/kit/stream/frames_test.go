package stream

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"clusterkit.dev/services/kit/records"
)

// ver is a version of the tests: its two numbers.
type ver struct{ hi, lo uint64 }

func (v ver) Less(o ver) bool       { return v.hi < o.hi || v.hi == o.hi && v.lo < o.lo }
func (v ver) Pair() (hi, lo uint64) { return v.hi, v.lo }
func verOf(hi, lo uint64) ver       { return ver{hi, lo} }

type record = records.Record[ver]

func rec(key, value string, hi, lo uint64) record {
	return record{Key: key, Value: []byte(value), Version: ver{hi, lo}}
}

const maxVersion = 1 << 62

func genRecord() *rapid.Generator[record] {
	return rapid.Custom(func(t *rapid.T) record {
		r := record{
			Key:     rapid.StringN(1, 40, -1).Draw(t, "key"),
			Version: ver{rapid.Uint64Max(maxVersion-1).Draw(t, "hi"), rapid.Uint64Max(maxVersion-1).Draw(t, "lo")},
			Deleted: rapid.Bool().Draw(t, "deleted"),
		}
		if !r.Deleted {
			r.Value = rapid.SliceOfN(rapid.Byte(), 0, 200).Draw(t, "value")
		}
		return r
	})
}

func readAll(b []byte, lim Limits) ([]record, error) {
	return ReadAll(bytes.NewReader(b), verOf, lim)
}

func frames(recs ...record) []byte {
	var b []byte
	for i := range recs {
		b = AppendRecord(b, &recs[i])
	}
	return AppendEnd(b, len(recs))
}

func TestFramesRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		recs := rapid.SliceOfN(genRecord(), 0, 20).Draw(t, "records")
		got, err := readAll(frames(recs...), Limits{MaxVersion: maxVersion})
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

// TestCutStreamsAreDetected checks that a stream cut at any byte fails
// instead of passing for a smaller partition.
func TestCutStreamsAreDetected(t *testing.T) {
	b := frames(rec("a", "1", 1, 1), record{Key: "b", Version: ver{2, 3}, Deleted: true}, rec("c", "three", 1, 2))
	for cut := 0; cut < len(b); cut++ {
		if _, err := readAll(b[:cut], Limits{}); !errors.Is(err, ErrTruncated) {
			t.Fatalf("stream cut at byte %d of %d: %v, want ErrTruncated", cut, len(b), err)
		}
	}
	// An end frame that miscounts is refused too.
	one := rec("a", "1", 1, 1)
	if _, err := readAll(AppendEnd(AppendRecord(nil, &one), 2), Limits{}); err == nil {
		t.Fatal("end frame counting 2 after 1 record accepted")
	}
	// So is a field longer than any record can hold, before its bytes.
	huge := []byte{FrameRecord, 0xff, 0xff, 0xff, 0xff, 0x0f}
	if _, err := readAll(huge, Limits{}); err == nil || errors.Is(err, ErrTruncated) {
		t.Fatalf("oversized key: %v", err)
	}
}

// TestLimits checks that a record beyond the Limits, or with an empty
// key, fails the stream, and one at the limits passes.
func TestLimits(t *testing.T) {
	lim := Limits{MaxKey: 8, MaxValue: 16, MaxVersion: 100}
	for _, tt := range []struct {
		name string
		r    record
		ok   bool
	}{
		{"at the limits", rec(strings.Repeat("k", 8), strings.Repeat("v", 16), 99, 99), true},
		{"empty key", rec("", "v", 1, 1), false},
		{"key over the limit", rec(strings.Repeat("k", 9), "v", 1, 1), false},
		{"value over the limit", rec("k", strings.Repeat("v", 17), 1, 1), false},
		{"hi at the bound", rec("k", "v", 100, 1), false},
		{"lo at the bound", rec("k", "v", 1, 100), false},
	} {
		_, err := readAll(frames(tt.r), lim)
		if (err == nil) != tt.ok {
			t.Errorf("%s: %v, want ok %v", tt.name, err, tt.ok)
		}
	}
	// The defaults: 64 KiB keys, 8 MiB values, any version.
	if _, err := readAll(frames(rec(strings.Repeat("k", 64<<10), "v", 1<<64-1, 1<<64-1)), Limits{}); err != nil {
		t.Errorf("a 64 KiB key under the default limits: %v", err)
	}
	if _, err := readAll(frames(rec(strings.Repeat("k", 64<<10+1), "v", 1, 1)), Limits{}); err == nil {
		t.Error("a key over 64 KiB passed the default limits")
	}
}

// TestReadNAllocatesAsBytesArrive checks that a field announced long and
// cut short fails without the announced allocation.
func TestReadNAllocatesAsBytesArrive(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, err := ReadN(strings.NewReader("short"), 1<<30)
	runtime.ReadMemStats(&after)
	if err == nil || got != nil {
		t.Fatalf("a cut field: %q, %v", got, err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("%d bytes allocated for a 1 GiB field cut after 5 bytes", n)
	}
	b, err := ReadN(strings.NewReader(strings.Repeat("x", 200<<10)), 200<<10)
	if err != nil || len(b) != 200<<10 {
		t.Fatalf("a 200 KiB field: %d bytes, %v", len(b), err)
	}
}
