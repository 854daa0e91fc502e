package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	kit "clusterkit.dev/services/kit/store"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// open opens the store in dir on fs and closes it at the end of the test
// unless the test did.
func open(t testing.TB, fs vfs.FS, dir string, opts Options) *Store {
	t.Helper()
	opts.Engine.FS = fs
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

// epoch is a Check that accepts a write at epoch e.
func epoch(e uint64) func() (uint64, error) { return func() (uint64, error) { return e, nil } }

// write stores a primary's write and fails the test on an error.
func write(t testing.TB, s *Store, p int, key, value string, deleted bool) (Record, bool) {
	t.Helper()
	rec, existed, err := s.Write(p, key, []byte(value), deleted, epoch(5))
	if err != nil {
		t.Fatalf("write %d/%s: %v", p, key, err)
	}
	return rec, existed
}

// pk names a key in a partition.
type pk struct {
	p   int
	key string
}

// model is what a store must hold: each key's latest record.
type model map[pk]Record

func clone(m model) model {
	c := make(model, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// check checks that s holds exactly m: every key's record, and an index
// with one entry per key, at the record's position, in order, up to the
// partition's head.
func check(t testing.TB, s *Store, m model) {
	t.Helper()
	for k, want := range m {
		got, found, err := s.Get(k.p, k.key)
		if err != nil || !found || got.Version != want.Version || got.Deleted != want.Deleted || string(got.Value) != string(want.Value) {
			t.Fatalf("partition %d key %q: got %+v (found %v, %v), want %+v", k.p, k.key, got, found, err, want)
		}
	}
	parts, err := s.Partitions()
	if err != nil {
		t.Fatal(err)
	}
	entries := 0
	for _, p := range parts {
		var last uint64
		var raw int
		// Records false: every entry the index holds.
		if err := s.Scan(p, 0, All, false, func(*Entry) bool { raw++; return true }); err != nil {
			t.Fatal(err)
		}
		err := s.Scan(p, 0, All, true, func(e *Entry) bool {
			if e.Position <= last {
				t.Fatalf("partition %d: index position %d after %d", p, e.Position, last)
			}
			last = e.Position
			want, ok := m[pk{p, e.Record.Key}]
			if !ok || want.Version != e.Record.Version {
				t.Fatalf("partition %d: index entry %d holds %q %v, want %+v", p, e.Position, e.Record.Key, e.Record.Version, want)
			}
			entries++
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		if head, err := s.Head(p); err != nil || head < last || (raw > 0 && head != last) {
			t.Fatalf("partition %d: head %d (%v), last entry %d", p, head, err, last)
		}
		if n := countKeys(m, p); raw != n {
			t.Fatalf("partition %d: %d index entries for %d keys", p, raw, n)
		}
	}
	if entries != len(m) {
		t.Fatalf("the index holds %d keys' latest records, want %d", entries, len(m))
	}
}

func countKeys(m model, p int) int {
	n := 0
	for k := range m {
		if k.p == p {
			n++
		}
	}
	return n
}

// changeRandomly makes n random changes through the three write paths (a
// primary's writes and deletes, replicated merges with a cursor) and
// records them in m.
func changeRandomly(t testing.TB, s *Store, m model, rng *rand.Rand, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		p := rng.IntN(4)
		key := "k" + strconv.Itoa(rng.IntN(40))
		switch op := rng.IntN(10); {
		case op < 5:
			rec, _ := write(t, s, p, key, fmt.Sprintf("v%d", rng.Int()), false)
			m[pk{p, key}] = rec
		case op < 7:
			rec, existed := write(t, s, p, key, "", true)
			if old, ok := m[pk{p, key}]; existed != (ok && !old.Deleted) {
				t.Fatalf("delete of %q: existed %v, model %+v", key, existed, old)
			}
			if existed {
				m[pk{p, key}] = rec
			}
		default:
			// A replicated batch: records of other epochs, some older than
			// what the store holds, the same key possibly twice.
			next := model{}
			err := s.Change(func(c *Change) error {
				clear(next)
				for j := 0; j < 3; j++ {
					rec := Record{Key: "k" + strconv.Itoa(rng.IntN(40)), Value: []byte("r" + strconv.Itoa(rng.Int())),
						Version: Version{Epoch: uint64(3 + rng.IntN(5)), Seq: uint64(rng.IntN(1 << 20))}}
					if _, err := c.Merge(p, rec); err != nil {
						return err
					}
					k := pk{p, rec.Key}
					old, ok := next[k]
					if !ok {
						old, ok = m[k]
					}
					if !ok || rec.Version.Newer(old.Version) {
						next[k] = rec
					}
				}
				return c.Advance(p, Cursor{Node: "primary", Inc: 1, Seq: uint64(i + 1)})
			})
			if err != nil {
				t.Fatal(err)
			}
			for k, r := range next {
				m[k] = r
			}
		}
	}
}

// Every change survives a restart, positions never repeat, and the index
// stays one entry per key.
func TestRestartKeepsEveryChange(t *testing.T) {
	for _, window := range []time.Duration{0, 10 * time.Millisecond} {
		t.Run(fmt.Sprintf("window-%v", window), func(t *testing.T) {
			fs := vfs.NewMem()
			opts := Options{SyncWindow: window}
			rng := rand.New(rand.NewPCG(1, uint64(window)))
			m := model{}
			var inc, lastSeq uint64
			for round := 0; round < 5; round++ {
				s := open(t, fs, "kv", opts)
				if round == 0 {
					inc = s.Incarnation()
				} else if s.Incarnation() != inc {
					t.Fatal("incarnation changed across a restart")
				}
				check(t, s, m)
				changeRandomly(t, s, m, rng, 150)
				check(t, s, m)
				rec, _ := write(t, s, 0, "probe", "x", false)
				if rec.Version.Seq <= lastSeq {
					t.Fatalf("position %d after a restart, was already at %d", rec.Version.Seq, lastSeq)
				}
				lastSeq = rec.Version.Seq
				m[pk{0, "probe"}] = rec
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
			s := open(t, fs, "kv", opts)
			check(t, s, m)
			cs, err := s.Cursors(1)
			if err != nil || !slices.ContainsFunc(cs, func(c Cursor) bool { return c.Node == "primary" && c.Seq > 0 }) {
				t.Fatalf("cursors after restarts: %+v, %v", cs, err)
			}
		})
	}
}

// A write judged by Check: a refused write changes nothing and does not
// fail its neighbours; overwrites and deletes move the key's one index
// entry; a delete of a missing key writes nothing; a closed store refuses.
func TestWritesAreJudgedOneByOne(t *testing.T) {
	s := open(t, vfs.NewMem(), "kv", Options{})
	refused := errors.New("refused")
	ws := []BatchWrite{
		{Partition: 0, Key: "a", Value: []byte("1"), Check: epoch(7)},
		{Partition: 0, Key: "nope", Value: []byte("x"), Check: func() (uint64, error) { return 0, refused }},
		{Partition: 1, Key: "b", Value: []byte("2"), Check: epoch(7)},
		{Partition: 0, Key: "a", Value: []byte("3"), Check: epoch(8)},
		{Partition: 1, Key: "missing", Deleted: true, Check: epoch(8)},
	}
	if err := s.WriteBatch(ws); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(ws[1].Err, refused) || ws[0].Err != nil || ws[4].Existed || ws[4].Record.Key != "" {
		t.Fatalf("outcomes: %+v", ws)
	}
	if ws[3].Record.Version.Seq <= ws[0].Record.Version.Seq {
		t.Fatalf("second write of a numbered %v, first %v", ws[3].Record.Version, ws[0].Record.Version)
	}
	m := model{{0, "a"}: ws[3].Record, {1, "b"}: ws[2].Record}
	check(t, s, m)
	rec, existed := write(t, s, 1, "b", "", true)
	if !existed || !rec.Deleted {
		t.Fatalf("delete of b: %+v existed %v", rec, existed)
	}
	m[pk{1, "b"}] = rec
	if _, existed := write(t, s, 1, "b", "", true); existed {
		t.Fatal("second delete of b: existed")
	}
	check(t, s, m)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Write(0, "late", nil, false, epoch(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after Close: %v, want ErrClosed", err)
	}
}

// A reader always finds what the change before it wrote, while the
// engine flushes its memtables to tables under it (a memtable of 256
// KiB): nothing is waited for but the writes themselves.
func TestReadsSeeEveryEarlierChange(t *testing.T) {
	s := open(t, vfs.NewMem(), "kv", Options{SyncWindow: 5 * time.Millisecond, Engine: kit.Options{MemTableSize: 256 << 10}})
	value := make([]byte, 512)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			key := "w" + strconv.Itoa(g)
			for i := range 300 {
				v := append(strconv.AppendInt(nil, int64(i), 10), value...)
				if _, _, err := s.Write(g%3, key, v, false, epoch(1)); err != nil {
					t.Error(err)
					return
				}
				rec, found, err := s.Get(g%3, key)
				if err != nil || !found || string(rec.Value) != string(v) {
					t.Errorf("%s after writing %d: %.8q (found %v, %v)", key, i, rec.Value, found, err)
					return
				}
				// The index agrees: the key's one entry is its latest record.
				n := 0
				err = s.Scan(g%3, 0, All, true, func(e *Entry) bool {
					if e.Record.Key == key {
						n++
						if e.Record.Version != rec.Version {
							t.Errorf("%s: index entry holds %v, the key %v", key, e.Record.Version, rec.Version)
						}
					}
					return true
				})
				if err != nil || n != 1 {
					t.Errorf("%s: %d index entries (%v), want 1", key, n, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// A scan from any position returns the latest record of every key after
// it, in order, and only the durable ones when asked.
func TestScanFromAnyPosition(t *testing.T) {
	// A window far longer than the test: only Sync makes changes durable.
	s := open(t, vfs.NewMem(), "kv", Options{SyncWindow: time.Duration(1 << 40)})
	latest := map[string]uint64{}
	for i := range 30 {
		rec, _ := write(t, s, 0, "a"+strconv.Itoa(i), "x", false)
		latest[rec.Key] = rec.Version.Seq
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	synced := s.Synced()
	for i := 0; i < 30; i += 3 {
		for _, k := range []string{"a" + strconv.Itoa(i), "b" + strconv.Itoa(i)} {
			rec, _ := write(t, s, 0, k, "y", false) // moves a's entry forward
			latest[k] = rec.Version.Seq
		}
	}
	var positions []uint64
	for _, l := range latest {
		positions = append(positions, l)
	}
	slices.Sort(positions)
	head := positions[len(positions)-1]
	if h, err := s.Head(0); err != nil || h != head {
		t.Fatalf("head %d (%v), want %d", h, err, head)
	}
	for _, upto := range []uint64{synced, All} {
		for after := uint64(0); after <= head; after++ {
			var got, want []uint64
			err := s.Scan(0, after, upto, true, func(e *Entry) bool {
				if e.Record.Version.Seq != e.Position {
					t.Fatalf("entry at %d holds a record of version %v", e.Position, e.Record.Version)
				}
				got = append(got, e.Position)
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range positions {
				if l > after && l <= upto {
					want = append(want, l)
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("scan after %d up to %d: %v, want %v", after, upto, got, want)
			}
		}
	}
	if got := s.Synced(); got != synced {
		t.Fatalf("Synced moved from %d to %d with no fsync", synced, got)
	}
}
