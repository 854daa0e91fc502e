package store

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// openAt opens a store in dir on fs, closing it at the end of the test
// unless the test closed it.
func openAt(t testing.TB, fs vfs.FS, dir string, opts Options) *Store {
	t.Helper()
	opts.FS = fs
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// set writes key=value in partition p in its own update.
func set(t testing.TB, s *Store, p int, key, value string) {
	t.Helper()
	if err := s.Update(func(tx *Tx) error { return tx.Set(p, []byte(key), []byte(value)) }); err != nil {
		t.Fatalf("set %d/%s: %v", p, key, err)
	}
}

// wantValue fails unless key in partition p holds value ("" with found
// false: absent).
func wantValue(t testing.TB, s *Store, p int, key, value string, found bool) {
	t.Helper()
	v, ok, err := s.Get(p, []byte(key))
	if err != nil {
		t.Fatalf("Get %d/%s: %v", p, key, err)
	}
	if ok != found || string(v) != value {
		t.Fatalf("Get %d/%s = %q, %v; want %q, %v", p, key, v, ok, value, found)
	}
}

// fataler is what the helpers need of a testing.TB or a *rapid.T.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// scanAll returns partition p's keys and values, read page by page.
func scanAll(t fataler, s *Store, p, page int) map[string]string {
	t.Helper()
	out := map[string]string{}
	var after []byte
	for {
		n, err := s.Scan(p, after, page, func(k, v []byte) error {
			if after != nil && bytes.Compare(k, after) <= 0 {
				return fmt.Errorf("key %q not after %q", k, after)
			}
			out[string(k)] = string(v)
			after = bytes.Clone(k)
			return nil
		})
		if err != nil {
			t.Fatalf("Scan %d: %v", p, err)
		}
		if n < page {
			return out
		}
	}
}

func TestRestartKeepsSyncedWrites(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.HadData() {
		t.Fatal("a new store reports HadData")
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 50 {
				set(t, s, w, fmt.Sprintf("k%03d", i), fmt.Sprintf("v%d.%d", w, i))
			}
		})
	}
	wg.Wait()
	if err := s.Update(func(tx *Tx) error { return tx.SetMeta("epoch", []byte{7}) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close = %v, want ErrClosed", err)
	}
	if _, _, err := s.Get(0, []byte("k000")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close = %v, want ErrClosed", err)
	}
	if err := s.Update(func(tx *Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Update after Close = %v, want ErrClosed", err)
	}

	s = openAt(t, vfs.Default, dir, Options{})
	if !s.HadData() {
		t.Fatal("a reopened store with data reports !HadData")
	}
	for w := range 8 {
		for i := range 50 {
			wantValue(t, s, w, fmt.Sprintf("k%03d", i), fmt.Sprintf("v%d.%d", w, i), true)
		}
	}
	if v, ok, err := s.Meta("epoch"); err != nil || !ok || !bytes.Equal(v, []byte{7}) {
		t.Fatalf("Meta = %v, %v, %v; want [7], true", v, ok, err)
	}
	if _, ok, err := s.Meta("other"); err != nil || ok {
		t.Fatalf("Meta of an unset name = %v, %v; want false", ok, err)
	}
}

func TestScanPagesThroughOnePartition(t *testing.T) {
	s := openAt(t, vfs.NewMem(), "db", Options{})
	want := map[string]string{}
	for i := range 100 {
		k, v := fmt.Sprintf("key-%03d", i), fmt.Sprintf("value-%d", i)
		set(t, s, 3, k, v)
		want[k] = v
		// Neighbours on both sides, which no scan of 3 may return.
		set(t, s, 2, k, "two")
		set(t, s, 4, k, "four")
	}
	// Keys that sort around the partition boundary bytes.
	set(t, s, 3, "", "empty")
	set(t, s, 3, "\xff\xff", "high")
	want[""], want["\xff\xff"] = "empty", "high"
	for _, page := range []int{1, 7, 100, 1000} {
		got := scanAll(t, s, 3, page)
		if len(got) != len(want) {
			t.Fatalf("page %d: %d keys, want %d", page, len(got), len(want))
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("page %d: %q = %q, want %q", page, k, got[k], v)
			}
		}
	}
	if n, err := s.Scan(9, nil, 10, func(k, v []byte) error { return nil }); err != nil || n != 0 {
		t.Fatalf("Scan of an empty partition = %d, %v", n, err)
	}
	stop := errors.New("stop")
	if n, err := s.Scan(3, nil, 0, func(k, v []byte) error { return stop }); !errors.Is(err, stop) || n != 0 {
		t.Fatalf("Scan whose fn fails = %d, %v; want 0, stop", n, err)
	}
	ps, err := s.Partitions()
	if err != nil || fmt.Sprint(ps) != "[2 3 4]" {
		t.Fatalf("Partitions = %v, %v; want [2 3 4]", ps, err)
	}
}

func TestDropPartitionLeavesTheOthers(t *testing.T) {
	fs := vfs.NewMem()
	s := openAt(t, fs, "db", Options{})
	last := 1<<32 - 1
	for _, p := range []int{0, 1, 2, last} {
		for i := range 20 {
			set(t, s, p, fmt.Sprintf("k%02d", i), fmt.Sprint(p))
		}
	}
	for _, p := range []int{1, last} {
		err := s.Update(func(tx *Tx) error {
			if any, err := tx.Any(p); err != nil || !any {
				return fmt.Errorf("Any(%d) = %v, %v before the drop", p, any, err)
			}
			return tx.DropPartition(p)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err := s.Update(func(tx *Tx) error {
		if any, err := tx.Any(1); err != nil || any {
			return fmt.Errorf("Any(1) = %v, %v after the drop", any, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(s *Store) {
		t.Helper()
		for _, p := range []int{0, 2} {
			if got := scanAll(t, s, p, 5); len(got) != 20 || got["k07"] != fmt.Sprint(p) {
				t.Fatalf("partition %d after the drop: %v", p, got)
			}
		}
		for _, p := range []int{1, last} {
			if got := scanAll(t, s, p, 5); len(got) != 0 {
				t.Fatalf("dropped partition %d still holds %v", p, got)
			}
			wantValue(t, s, p, "k00", "", false)
		}
	}
	check(s)
	// A key written after the drop is there.
	set(t, s, 1, "new", "after")
	wantValue(t, s, 1, "new", "after", true)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, fs, "db", Options{})
	wantValue(t, s, 1, "new", "after", true)
	if err := s.Update(func(tx *Tx) error { return tx.Delete(1, []byte("new")) }); err != nil {
		t.Fatal(err)
	}
	check(s)
}

func TestAFailedUpdateWritesNothing(t *testing.T) {
	s := openAt(t, vfs.NewMem(), "db", Options{})
	set(t, s, 0, "a", "1")
	boom := errors.New("boom")
	err := s.Update(func(tx *Tx) error {
		if err := tx.Set(0, []byte("a"), []byte("2")); err != nil {
			return err
		}
		if err := tx.Set(0, []byte("b"), []byte("2")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	wantValue(t, s, 0, "a", "1", true)
	wantValue(t, s, 0, "b", "", false)
}

func TestOnAppliedRunsInTheUpdatesOrderOnceApplied(t *testing.T) {
	for _, d := range []Durability{Synced, Windowed, NoSync} {
		t.Run(d.String(), func(t *testing.T) {
			s := openAt(t, vfs.NewMem(), "db", Options{Durability: d, SyncWindow: time.Millisecond})
			var decided, applied []int // each appended to under the store's lock
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 50 {
						n := w*1000 + i
						fail := i%7 == 3
						err := s.Update(func(tx *Tx) error {
							k := []byte(strconv.Itoa(n))
							if n%5 != 0 { // some updates write nothing
								if err := tx.Set(0, k, k); err != nil {
									return err
								}
							}
							tx.OnApplied(func() {
								if n%5 != 0 {
									if _, closer, err := s.db.Get(partitionKey(0, k)); err != nil {
										t.Errorf("OnApplied of %d: Pebble does not hold its write: %v", n, err)
									} else {
										_ = closer.Close()
									}
								}
								applied = append(applied, n)
							})
							if fail {
								return errors.New("refused")
							}
							decided = append(decided, n)
							return nil
						})
						if (err != nil) != fail {
							t.Errorf("Update %d = %v", n, err)
						}
					}
				}()
			}
			wg.Wait()
			if !slices.Equal(applied, decided) {
				t.Fatalf("OnApplied ran for %v;\nthe updates that succeeded, in order: %v", applied, decided)
			}
		})
	}
}

func TestUpdateReadsWhatEarlierUpdatesLeft(t *testing.T) {
	// Concurrent read-modify-write increments: Updates run one at a time,
	// so none is lost.
	s := openAt(t, vfs.NewMem(), "db", Options{})
	const workers, each = 8, 40
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				err := s.Update(func(tx *Tx) error {
					v, _, err := tx.Get(0, []byte("n"))
					if err != nil {
						return err
					}
					n, _ := strconv.Atoi(string(v))
					return tx.Set(0, []byte("n"), strconv.AppendInt(nil, int64(n+1), 10))
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	wantValue(t, s, 0, "n", strconv.Itoa(workers*each), true)
}

func TestBadPartitionsAreRefused(t *testing.T) {
	s := openAt(t, vfs.NewMem(), "db", Options{})
	for _, p := range []int{-1, 1 << 32} {
		if _, _, err := s.Get(p, []byte("k")); err == nil {
			t.Errorf("Get(%d) succeeded", p)
		}
		if err := s.Update(func(tx *Tx) error { return tx.Set(p, []byte("k"), nil) }); err == nil {
			t.Errorf("Set(%d) succeeded", p)
		}
		if _, err := s.Scan(p, nil, 1, nil); err == nil {
			t.Errorf("Scan(%d) succeeded", p)
		}
	}
	if _, err := Open("db", Options{Durability: Windowed, FS: vfs.NewMem()}); err == nil {
		t.Error("Windowed without a SyncWindow opened")
	}
}
