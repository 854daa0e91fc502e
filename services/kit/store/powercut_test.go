package store

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// cut returns the file system as a power cut now would leave it: every
// synced byte, and unsyncedPercent of the rest (a random choice of
// blocks and directory entries).
func cut(fs *vfs.MemFS, unsyncedPercent int, seed int64) *vfs.MemFS {
	return fs.CrashClone(vfs.CrashCloneCfg{
		UnsyncedDataPercent: unsyncedPercent,
		RNG:                 rand.New(rand.NewPCG(uint64(seed), 0)),
	})
}

// cutAt is a file system as a power cut left it, and the writes
// acknowledged before the cut.
type cutAt struct {
	fs    *vfs.MemFS
	acked map[string]string
}

func TestAPowerCutKeepsEverySyncedWrite(t *testing.T) {
	for _, unsynced := range []int{0, 50, 100} {
		t.Run(fmt.Sprintf("unsynced-%d%%", unsynced), func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			s := openAt(t, fs, "db", Options{MemTableSize: 256 << 10})
			// Concurrent writers, each recording what returned; the
			// power goes while they are still writing.
			var (
				mu    sync.Mutex
				acked = map[string]string{}
				wg    sync.WaitGroup
				cuts  = make(chan cutAt, 1)
			)
			for w := range 6 {
				wg.Go(func() {
					for i := 0; ; i++ {
						k, v := fmt.Sprintf("w%d-%04d", w, i), strconv.Itoa(i)
						err := s.Update(func(tx *Tx) error { return tx.Set(w%3, []byte(k), []byte(v)) })
						if err != nil {
							return
						}
						mu.Lock()
						acked[k] = v
						n := len(acked)
						if n == 3000 {
							// Enough writes to have flushed memtables to
							// tables: the power goes now, under load,
							// with exactly the writes recorded so far
							// acknowledged (the others wait for mu).
							crashed := cut(fs, unsynced, int64(unsynced))
							before := make(map[string]string, len(acked))
							for k, v := range acked {
								before[k] = v
							}
							cuts <- cutAt{crashed, before}
						}
						mu.Unlock()
						if n >= 3000 {
							return
						}
					}
				})
			}
			c := <-cuts
			wg.Wait()
			before := c.acked

			after := openAt(t, c.fs, "db", Options{})
			for k, v := range before {
				var w, i int
				if _, err := fmt.Sscanf(k, "w%d-%d", &w, &i); err != nil {
					t.Fatal(err)
				}
				wantValue(t, after, w%3, k, v, true)
			}
			// Whatever else survived is a write that was made, whole.
			for p := range 3 {
				for k, v := range scanAll(t, after, p, 500) {
					var w, i int
					if _, err := fmt.Sscanf(k, "w%d-%d", &w, &i); err != nil || w%3 != p || v != strconv.Itoa(i) {
						t.Fatalf("after the cut, partition %d holds %q=%q, which no write made", p, k, v)
					}
				}
			}
			// And the store takes writes again.
			set(t, after, 0, "after-the-cut", "yes")
			wantValue(t, after, 0, "after-the-cut", "yes", true)
		})
	}
}

func TestAPowerCutMayLoseUnsyncedWritesButNeverCorrupts(t *testing.T) {
	for _, d := range []Durability{NoSync, Windowed} {
		for seed := range int64(4) {
			t.Run(fmt.Sprintf("%v/seed-%d", d, seed), func(t *testing.T) {
				fs := vfs.NewCrashableMem()
				// A window far longer than the test: nothing is synced by
				// the window's loop before the cut.
				s := openAt(t, fs, "db", Options{Durability: d, SyncWindow: 1 << 40, MemTableSize: 256 << 10})
				synced := map[string]string{}
				for i := range 200 {
					k := fmt.Sprintf("synced-%03d", i)
					set(t, s, 1, k, k)
					synced[k] = k
				}
				// Close syncs: these survive any cut.
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				s = openAt(t, fs, "db", Options{Durability: d, SyncWindow: 1 << 40, MemTableSize: 256 << 10})
				for i := range 2000 {
					set(t, s, 1, fmt.Sprintf("unsynced-%04d", i), strconv.Itoa(i))
				}
				after := openAt(t, cut(fs, 50, seed), "db", Options{})
				got := scanAll(t, after, 1, 300)
				for k, v := range synced {
					if got[k] != v {
						t.Fatalf("synced %q = %q after the cut, want %q", k, got[k], v)
					}
				}
				lost := 0
				for i := range 2000 {
					k := fmt.Sprintf("unsynced-%04d", i)
					v, ok := got[k]
					if !ok {
						lost++
						continue
					}
					if v != strconv.Itoa(i) {
						t.Fatalf("%q = %q after the cut, want %d", k, v, i)
					}
				}
				t.Logf("%d of 2000 unsynced writes lost", lost)
				// The log is replayed in order: what survived is a prefix.
				for i := 1; i < 2000; i++ {
					if _, ok := got[fmt.Sprintf("unsynced-%04d", i)]; ok {
						if _, prev := got[fmt.Sprintf("unsynced-%04d", i-1)]; !prev {
							t.Fatalf("unsynced write %d survived but %d did not", i, i-1)
						}
					}
				}
			})
		}
	}
}
