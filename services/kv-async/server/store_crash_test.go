package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// storeModel is what a store must hold: each key's latest record.
type storeModel map[partKey]Record

// checkStore checks that s holds exactly the model, that its index has
// one entry per key at the record's position, in both bbolt and the
// memtable, and that a scan returns every key.
func checkStore(t *testing.T, s *Store, model storeModel) {
	t.Helper()
	for k, want := range model {
		got, found, err := s.Get(k.p, k.key)
		if err != nil || !found || got.Version != want.Version || got.Deleted != want.Deleted || string(got.Value) != string(want.Value) {
			t.Fatalf("partition %d key %q: got %+v (found %v, %v), want %+v", k.p, k.key, got, found, err, want)
		}
	}
	parts, err := s.Partitions()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[partKey]bool{}
	for _, p := range parts {
		last := uint64(0)
		_, err := s.scan(p, 0, s.written(), true, func(r *indexRecord) bool {
			if r.local <= last {
				t.Fatalf("partition %d: index position %d after %d", p, r.local, last)
			}
			last = r.local
			k := partKey{p, r.rec.Key}
			if want, ok := model[k]; !ok {
				t.Fatalf("partition %d: scan found %q, which the store must not hold", p, r.rec.Key)
			} else if r.rec.Version == want.Version {
				seen[k] = true
			}
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != len(model) {
		for k, r := range model {
			if !seen[k] {
				mr := s.mem.record(k.p, k.key)
				var ml uint64
				if mr != nil {
					ml = mr.lsn
				}
				t.Logf("missing p%d %q version %v memtable lsn %d (written %d synced %d) head %d", k.p, k.key, r.Version, ml, s.written(), s.synced(), s.bboltHead(k.p))
			}
		}
		t.Fatalf("scans found the latest record of %d keys, want %d", len(seen), len(model))
	}
}

// checkIndexApplied checks, once everything is applied, that bbolt has one
// index entry per record.
func checkIndexApplied(t *testing.T, s *Store) {
	t.Helper()
	err := s.view(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			p, ok := parsePartitionName(name)
			if !ok {
				return nil
			}
			pb, err := partition(tx, p, false)
			if err != nil {
				return err
			}
			if d, x := pb.data.Stats().KeyN, pb.index.Stats().KeyN; d != x {
				return fmt.Errorf("partition %d: %d records but %d index entries", p, d, x)
			}
			return pb.data.ForEach(func(k, v []byte) error {
				h, err := decodeHeader(v)
				if err != nil {
					return err
				}
				if e := pb.index.Get(u64(h.local)); e == nil || string(e[8:]) != string(k) {
					return fmt.Errorf("partition %d key %q: no index entry at %d", p, k, h.local)
				}
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// changeRandomly makes n random changes through the store's three write
// paths (a primary's write or delete, replicated merges) and records them
// in model.
func changeRandomly(t *testing.T, s *Store, model storeModel, rng *rand.Rand, n int) {
	t.Helper()
	ctx := context.Background()
	epoch := func() (uint64, error) { return 5, nil }
	for i := 0; i < n; i++ {
		p := rng.IntN(4)
		key := "k" + strconv.Itoa(rng.IntN(40))
		k := partKey{p, key}
		switch op := rng.IntN(10); {
		case op < 5:
			v := []byte(fmt.Sprintf("v%d", rng.Int()))
			rec, _, err := s.Write(ctx, p, key, v, false, epoch)
			if err != nil {
				t.Fatal(err)
			}
			model[k] = rec
		case op < 7:
			rec, existed, err := s.Write(ctx, p, key, nil, true, epoch)
			if err != nil {
				t.Fatal(err)
			}
			if old, ok := model[k]; existed != (ok && !old.Deleted) {
				t.Fatalf("delete of %q: existed %v, model %+v", key, existed, old)
			}
			if existed {
				model[k] = rec
			}
		default:
			// A replicated batch: records of other epochs, some older than
			// what the store holds, the same key possibly twice.
			err := s.mutate(ctx, func(m *mutation) error {
				for j := 0; j < 3; j++ {
					rec := Record{Key: "k" + strconv.Itoa(rng.IntN(40)), Value: []byte("r" + strconv.Itoa(rng.Int())),
						Version: Version{Epoch: uint64(3 + rng.IntN(5)), Seq: uint64(rng.IntN(1 << 20))}}
					if _, err := m.merge(p, rec, time.Now()); err != nil {
						return err
					}
					if old, ok := model[partKey{p, rec.Key}]; !ok || rec.Version.Newer(old.Version) {
						model[partKey{p, rec.Key}] = rec
					}
				}
				return m.advance(p, Cursor{Node: "primary", Inc: 1, Seq: uint64(i + 1)})
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestStoreSurvivesACrashAtAnyPoint makes changes, applies some of them to
// bbolt, "crashes" (the log is written, neither fsynced nor applied) and
// reopens, several times: every acknowledged change is there, and the
// index stays one entry per key.
func TestStoreSurvivesACrashAtAnyPoint(t *testing.T) {
	for _, window := range []time.Duration{0, 10 * time.Millisecond} {
		t.Run(fmt.Sprintf("window %v", window), func(t *testing.T) {
			dir := t.TempDir()
			opts := StoreOptions{SyncWindow: window, ApplyInterval: time.Hour, SegmentBytes: 8 << 10}
			rng := rand.New(rand.NewPCG(1, uint64(window)))
			model := storeModel{}
			var inc, lastLocal uint64
			for round := 0; round < 6; round++ {
				s, err := OpenStore(dir, opts)
				if err != nil {
					t.Fatal(err)
				}
				if round == 0 {
					inc = s.Incarnation()
				} else if s.Incarnation() != inc {
					t.Fatal("incarnation changed across a crash")
				}
				checkStore(t, s, model)
				if round > 0 {
					checkIndexApplied(t, s) // the replay applied everything
				}
				changeRandomly(t, s, model, rng, 150)
				// Apply part of the log to bbolt, as the applier would.
				if round%2 == 1 {
					s.applyRound()
					changeRandomly(t, s, model, rng, 50)
				}
				checkStore(t, s, model)
				rec, _, err := s.Write(context.Background(), 0, "probe", []byte("x"), false, func() (uint64, error) { return 5, nil })
				if err != nil {
					t.Fatal(err)
				}
				if rec.Version.Seq <= lastLocal {
					t.Fatalf("local sequence number %d after a crash, was already at %d", rec.Version.Seq, lastLocal)
				}
				lastLocal = rec.Version.Seq
				model[partKey{0, "probe"}] = rec
				s.crash()
			}
			s, err := OpenStore(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			checkStore(t, s, model)
			cs, err := s.Cursors(1)
			if err != nil || !slices.ContainsFunc(cs, func(c Cursor) bool { return c.Node == "primary" && c.Seq > 0 }) {
				t.Fatalf("cursors after crashes: %+v, %v", cs, err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			// A clean close applies the whole log.
			s, err = OpenStore(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.mem.pending(0) || len(s.queue) != 0 {
				t.Fatal("changes left to apply after a clean close")
			}
			checkIndexApplied(t, s)
			checkStore(t, s, model)
		})
	}
}

// TestStoreReadsWhileApplying has writers, readers and a fast applier run
// together: a reader always finds the last value its writer acknowledged,
// whether it is in the memtable or already applied to bbolt.
func TestStoreReadsWhileApplying(t *testing.T) {
	var applies atomic.Int64
	s, err := OpenStore(t.TempDir(), StoreOptions{SyncWindow: 5 * time.Millisecond, ApplyInterval: time.Millisecond,
		OnApply: func(int, int, time.Duration) { applies.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := "w" + strconv.Itoa(g)
			for i := 0; i < 300; i++ {
				v := strconv.Itoa(i)
				if _, _, err := s.Write(context.Background(), g%3, key, []byte(v), false, func() (uint64, error) { return 1, nil }); err != nil {
					t.Error(err)
					return
				}
				rec, found, err := s.Get(g%3, key)
				if err != nil || !found || string(rec.Value) != v {
					t.Errorf("%s after writing %s: %q (found %v, %v)", key, v, rec.Value, found, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if applies.Load() == 0 {
		t.Fatal("the applier never ran")
	}
}

// TestStoreScanFromAnyPosition compares scans from every position of a
// partition's index, half applied to bbolt and half in the memtable, with
// the records written.
func TestStoreScanFromAnyPosition(t *testing.T) {
	s, err := OpenStore(t.TempDir(), StoreOptions{ApplyInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var locals []uint64 // positions of the latest record of each key, ascending
	latest := map[string]uint64{}
	write := func(key string) {
		rec, _, err := s.Write(context.Background(), 0, key, []byte(key), false, func() (uint64, error) { return 1, nil })
		if err != nil {
			t.Fatal(err)
		}
		latest[key] = rec.Version.Seq
	}
	for i := 0; i < 30; i++ {
		write("a" + strconv.Itoa(i))
	}
	s.applyRound()
	for i := 0; i < 30; i += 3 {
		write("a" + strconv.Itoa(i)) // moves the key from bbolt's part to the memtable's
		write("b" + strconv.Itoa(i))
	}
	for _, l := range latest {
		locals = append(locals, l)
	}
	slices.Sort(locals)
	for after := uint64(0); after <= locals[len(locals)-1]; after++ {
		var got []uint64
		head, err := s.scan(0, after, s.synced(), true, func(r *indexRecord) bool {
			if r.rec.Version.Seq != r.local {
				t.Fatalf("entry at %d holds a record of version %v", r.local, r.rec.Version)
			}
			got = append(got, r.local)
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		// Keys written again may show their older record too (from bbolt,
		// which has not seen the newer one): harmless, receivers merge by
		// version. The latest records must all be there, in order.
		var want []uint64
		for _, l := range locals {
			if l > after {
				want = append(want, l)
			}
		}
		if !isSortedSuperset(got, want) || head != locals[len(locals)-1] {
			t.Fatalf("scan after %d: %v (head %d), want at least %v (head %d)", after, got, head, want, locals[len(locals)-1])
		}
	}
}

// isSortedSuperset reports whether got is strictly ascending and holds
// every element of want.
func isSortedSuperset(got, want []uint64) bool {
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			return false
		}
	}
	for _, w := range want {
		if _, found := slices.BinarySearch(got, w); !found {
			return false
		}
	}
	return true
}

// The SIGKILL test runs this test binary as a child process that writes
// to a store and prints each key it has written once the store has
// acknowledged it.
const killChildEnv = "KVASYNC_KILL_CHILD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		os.Exit(killChild(dir))
	}
	code := m.Run()
	if nodeBin.dir != "" {
		_ = os.RemoveAll(nodeBin.dir)
	}
	os.Exit(code)
}

func killChild(dir string) int {
	window, _ := time.ParseDuration(os.Getenv("KVASYNC_KILL_CHILD_WINDOW"))
	s, err := OpenStore(dir, StoreOptions{SyncWindow: window, ApplyInterval: 20 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				key := fmt.Sprintf("g%d-%d", g, i)
				if _, _, err := s.Write(context.Background(), i%8, key, []byte(key), false, func() (uint64, error) { return 1, nil }); err != nil {
					return
				}
				mu.Lock()
				fmt.Fprintln(out, key)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return 0
}

// TestStoreKeepsAcknowledgedWritesAcrossSIGKILL kills a process writing to
// a store with SIGKILL, and checks that the store, reopened, holds every
// write the process had been told was done.
func TestStoreKeepsAcknowledgedWritesAcrossSIGKILL(t *testing.T) {
	for _, window := range []string{"0s", "50ms"} {
		t.Run("window "+window, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), killChildEnv+"="+dir, "KVASYNC_KILL_CHILD_WINDOW="+window)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var acked []string
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				acked = append(acked, sc.Text())
				if len(acked) == 3000 {
					// Mid-stream: writes are being made, fsynced and applied.
					if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
						t.Fatal(err)
					}
					break
				}
			}
			for sc.Scan() {
				acked = append(acked, sc.Text()) // printed before the kill
			}
			err = cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child ended with %v, want killed (it wrote %d keys)", err, len(acked))
			}
			if segs, _ := filepath.Glob(filepath.Join(dir, "wal", "*.wal")); len(segs) == 0 {
				t.Fatal("the child left no log")
			}
			s, err := OpenStore(dir, StoreOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for _, key := range acked {
				g, i, _ := strings.Cut(strings.TrimPrefix(key, "g"), "-")
				n, _ := strconv.Atoi(i)
				_ = g
				rec, found, err := s.Get(n%8, key)
				if err != nil || !found || string(rec.Value) != key {
					t.Fatalf("acknowledged write %s lost after SIGKILL (%d acknowledged): %+v %v %v", key, len(acked), rec, found, err)
				}
			}
		})
	}
}

// TestStoreBackpressure blocks the applier and checks that writes stop
// being admitted once the queue of unapplied entries is full (and give up
// with their context), then resume once the applier catches up.
func TestStoreBackpressure(t *testing.T) {
	s, err := OpenStore(t.TempDir(), StoreOptions{MaxQueuedBytes: 4 << 10, ApplyInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A bbolt writer of our own holds off the applier's transaction.
	release, held := make(chan struct{}), make(chan struct{})
	go func() {
		_ = s.db.Update(func(*bolt.Tx) error {
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	epoch := func() (uint64, error) { return 1, nil }
	value := []byte(strings.Repeat("v", 100))
	admitted := 0
	for ; admitted < 1000; admitted++ {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		_, _, err := s.Write(ctx, 0, "k"+strconv.Itoa(admitted), value, false, epoch)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if admitted == 0 || admitted == 1000 {
		t.Fatalf("%d writes admitted with the applier blocked and a 4 KiB queue", admitted)
	}
	close(release)
	for i := 0; i < 200; i++ {
		if _, _, err := s.Write(context.Background(), 0, "after"+strconv.Itoa(i), value, false, epoch); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < admitted; i++ {
		if _, found, err := s.Get(0, "k"+strconv.Itoa(i)); err != nil || !found {
			t.Fatalf("admitted write %d missing: %v", i, err)
		}
	}
}
