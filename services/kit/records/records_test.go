package records_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"clusterkit.dev/services/kit/records"
	"clusterkit.dev/services/kit/store"
	"pgregory.net/rapid"
)

// ver is a version as the services have: two numbers, ordered.
type ver struct{ hi, lo uint64 }

func (v ver) Less(o ver) bool       { return v.hi < o.hi || v.hi == o.hi && v.lo < o.lo }
func (v ver) Pair() (hi, lo uint64) { return v.hi, v.lo }
func fromPair(hi, lo uint64) ver    { return ver{hi, lo} }

type (
	Version = ver
	Record  = records.Record[ver]
	Entry   = records.Entry[ver]
)

func open(t testing.TB, path string) *records.Store[ver] {
	t.Helper()
	s, err := records.Open(path, records.Options{}, fromPair)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustGet(t *testing.T, s *records.Store[ver], p int, key string) Record {
	t.Helper()
	r, found, err := s.Get(p, key)
	if err != nil || !found {
		t.Fatalf("get %q: found=%v err=%v", key, found, err)
	}
	return r
}

func rec(key, value string, counter, writer uint64) Record {
	return Record{Key: key, Value: []byte(value), Version: Version{counter, writer}}
}

func TestWriteKeepsTheNewestVersion(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "kv.db"))
	steps := []struct {
		r    Record
		want Version // the version the key holds afterwards
	}{
		{rec("k", "a", 2, 5), Version{2, 5}},
		{rec("k", "older", 1, 9), Version{2, 5}},     // a smaller counter loses whatever its writer
		{rec("k", "tie", 2, 3), Version{2, 5}},       // same counter: the greater writer wins
		{rec("k", "b", 2, 7), Version{2, 7}},         //
		{rec("k", "c", 3, 1), Version{3, 1}},         // a greater counter wins
		{rec("k", "duplicate", 3, 1), Version{3, 1}}, // a retried write changes nothing
	}
	for i, st := range steps {
		v, err := s.Write(0, st.r)
		if err != nil || v != st.want {
			t.Fatalf("step %d: write %v: holds %v, %v; want %v", i, st.r.Version, v, err, st.want)
		}
	}
	if r := mustGet(t, s, 0, "k"); string(r.Value) != "c" || r.Version != (Version{3, 1}) {
		t.Fatalf("key holds %+v", r)
	}
}

func TestDeleteKeepsATombstone(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "kv.db"))
	if _, err := s.Write(3, rec("k", "v", 1, 1)); err != nil {
		t.Fatal(err)
	}
	v, err := s.Write(3, Record{Key: "k", Version: Version{1, 2}, Deleted: true})
	if err != nil {
		t.Fatal(err)
	}
	r := mustGet(t, s, 3, "k")
	if !r.Deleted || r.Value != nil || r.Version != v || v != (Version{1, 2}) {
		t.Fatalf("tombstone: %+v", r)
	}
	// An older value arriving later does not resurrect the key.
	n, err := s.Merge([]Entry{{3, Record{Key: "k", Value: []byte("v"), Version: Version{1, 1}}}})
	if err != nil || n != 0 {
		t.Fatalf("merge of older value: stored %d, %v", n, err)
	}
	if r := mustGet(t, s, 3, "k"); !r.Deleted {
		t.Fatalf("older value resurrected the key: %+v", r)
	}
}

func TestConcurrentWritesLeaveTheNewest(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "kv.db"))
	const writers, each = 16, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				seq := uint64(i*writers + w + 1)
				if _, err := s.Write(1, rec("hot", fmt.Sprint(seq), 7, seq)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	const last = writers * each
	if r := mustGet(t, s, 1, "hot"); r.Version != (Version{7, last}) || string(r.Value) != fmt.Sprint(last) {
		t.Fatalf("after concurrent writes the key holds %+v, want seq %d", r, last)
	}
}

func TestScanPagesThroughAPartition(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "kv.db"))
	var want []string
	var entries []Entry
	for i := range 1000 {
		k := fmt.Sprintf("key-%04d", i)
		want = append(want, k)
		entries = append(entries, Entry{Partition: 4, Record: Record{Key: k, Value: []byte(k), Version: Version{1, 1}}})
	}
	// A record of another partition must not show up.
	entries = append(entries, Entry{Partition: 5, Record: Record{Key: "other", Version: Version{1, 1}}})
	if n, err := s.Merge(entries); err != nil || n != len(entries) {
		t.Fatalf("merge: %d, %v", n, err)
	}
	var got []string
	after := ""
	for {
		page, err := s.Scan(4, after, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			if string(r.Value) != r.Key {
				t.Fatalf("record %q has value %q", r.Key, r.Value)
			}
			got = append(got, r.Key)
		}
		after = page[len(page)-1].Key
	}
	if !slices.Equal(got, want) {
		t.Fatalf("scan returned %d keys, want %d in order", len(got), len(want))
	}
	if page, err := s.Scan(9, "", 10); err != nil || len(page) != 0 {
		t.Fatalf("scan of an absent partition: %v, %v", page, err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv.db")
	s, err := records.Open(path, records.Options{}, fromPair)
	if err != nil {
		t.Fatal(err)
	}
	if s.HadData() {
		t.Fatal("a new file reports data")
	}
	if _, err := s.Write(2, rec("k", "v", 1, 41)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Merge([]Entry{{2, rec("j", "v", 1, 12)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(2, rec("k", "w", 1, 50)); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("put after close: %v, want ErrClosed", err)
	}
	if _, _, err := s.Get(2, "k"); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("get after close: %v, want ErrClosed", err)
	}
	s = open(t, path)
	if !s.HadData() {
		t.Fatal("reopened file reports no data")
	}
	if r := mustGet(t, s, 2, "k"); string(r.Value) != "v" || r.Version != (Version{1, 41}) {
		t.Fatalf("after reopen: %+v", r)
	}
}

func TestDropIfChecksItsCondition(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "kv.db"))
	if _, err := s.Write(6, rec("k", "v", 1, 1)); err != nil {
		t.Fatal(err)
	}
	if dropped, err := s.DropIf(6, func() bool { return false }); dropped || err != nil {
		t.Fatalf("drop refused by its condition: dropped=%v err=%v", dropped, err)
	}
	mustGet(t, s, 6, "k")
	if dropped, err := s.DropIf(6, func() bool { return true }); !dropped || err != nil {
		t.Fatalf("drop: dropped=%v err=%v", dropped, err)
	}
	if _, found, _ := s.Get(6, "k"); found {
		t.Fatal("record survived the drop of its partition")
	}
	if dropped, err := s.DropIf(6, nil); dropped || err != nil {
		t.Fatalf("drop of an absent partition: dropped=%v err=%v", dropped, err)
	}
}

// TestMergeConverges checks the property replication and migration rely
// on: whatever order and grouping records arrive in, a store ends with the
// newest version of each key.
func TestMergeConverges(t *testing.T) {
	dir := t.TempDir()
	n := 0
	rapid.Check(t, func(rt *rapid.T) {
		keys := []string{"a", "b", "c"}
		var writes []Record
		seen := map[string]map[Version]bool{}
		for range rapid.IntRange(1, 30).Draw(rt, "writes") {
			k := rapid.SampledFrom(keys).Draw(rt, "key")
			v := Version{rapid.Uint64Range(1, 3).Draw(rt, "hi"), rapid.Uint64Range(1, 5).Draw(rt, "lo")}
			if seen[k] == nil {
				seen[k] = map[Version]bool{}
			}
			if seen[k][v] {
				continue // one version names one write
			}
			seen[k][v] = true
			r := Record{Key: k, Version: v, Deleted: rapid.Bool().Draw(rt, "deleted")}
			if !r.Deleted {
				r.Value = []byte(fmt.Sprint(k, v))
			}
			writes = append(writes, r)
		}
		want := map[string]Record{}
		for _, r := range writes {
			if cur, ok := want[r.Key]; !ok || cur.Version.Less(r.Version) {
				want[r.Key] = r
			}
		}
		order := rapid.Permutation(writes).Draw(rt, "order")
		n++
		s, err := records.Open(filepath.Join(dir, fmt.Sprintf("kv-%d.db", n)), records.Options{}, fromPair)
		if err != nil {
			rt.Fatal(err)
		}
		defer s.Close()
		for len(order) > 0 {
			cut := rapid.IntRange(1, len(order)).Draw(rt, "batch")
			var batch []Entry
			for _, r := range order[:cut] {
				batch = append(batch, Entry{Partition: 0, Record: r})
			}
			if _, err := s.Merge(batch); err != nil {
				rt.Fatal(err)
			}
			order = order[cut:]
		}
		got, err := s.Scan(0, "", 100)
		if err != nil {
			rt.Fatal(err)
		}
		if len(got) != len(want) {
			rt.Fatalf("store holds %d keys, want %d", len(got), len(want))
		}
		for _, r := range got {
			w := want[r.Key]
			if r.Version != w.Version || r.Deleted != w.Deleted || string(r.Value) != string(w.Value) {
				rt.Fatalf("key %q: got %+v, want %+v", r.Key, r, w)
			}
		}
	})
}

func TestMaxLoSurvivesARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv")
	opts := records.Options{TrackMaxLo: true}
	s, err := records.Open(path, opts, fromPair)
	if err != nil {
		t.Fatal(err)
	}
	if s.MaxLo() != 0 {
		t.Fatalf("MaxLo of a new store = %d", s.MaxLo())
	}
	for _, r := range []Record{rec("a", "1", 1, 90), rec("b", "1", 2, 40), rec("a", "old", 1, 95)} {
		if _, err := s.Write(0, r); err != nil {
			t.Fatal(err)
		}
	}
	// Older than what "a" holds: not stored, and its lo does not count.
	if _, err := s.Write(0, rec("a", "older", 0, 500)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = records.Open(path, opts, fromPair)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.MaxLo() != 95 {
		t.Fatalf("MaxLo after a restart = %d, want 95", s.MaxLo())
	}
}

func TestCheckOrder(t *testing.T) {
	if err := records.CheckOrder([]ver{{}, {0, 1}, {1, 0}, {1, 1}, {2, 0}}); err != nil {
		t.Errorf("an ordered list: %v", err)
	}
	if err := records.CheckOrder([]ver{{1, 0}, {0, 1}}); err == nil {
		t.Error("a list out of order passed")
	}
	if err := records.CheckOrder([]swapped{{0, 1}, {1, 0}}); err == nil {
		t.Error("a version whose pair is not in its order passed")
	}
}

// swapped orders by lo first but gives its pair as (hi, lo): records
// could not keep it.
type swapped struct{ hi, lo uint64 }

func (v swapped) Less(o swapped) bool   { return v.lo < o.lo || v.lo == o.lo && v.hi < o.hi }
func (v swapped) Pair() (hi, lo uint64) { return v.hi, v.lo }

func TestComparePairs(t *testing.T) {
	pairs := [][2]uint64{{0, 0}, {0, 1}, {0, 1 << 63}, {1, 0}, {1, 1}, {2, 0}, {1 << 63, 0}}
	for i, a := range pairs {
		for j, b := range pairs {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := records.ComparePairs(a[0], a[1], b[0], b[1]); got != want {
				t.Errorf("ComparePairs(%v, %v) = %d, want %d", a, b, got, want)
			}
		}
	}
	if s := records.FormatPair(3, 14); s != "3.14" {
		t.Errorf("FormatPair(3, 14) = %q", s)
	}
}
