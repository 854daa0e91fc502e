package store

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	kit "clusterkit.dev/services/kit/store"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// cut returns the file system as a power cut now would leave it: every
// synced byte, and unsyncedPercent of the rest.
func cut(fs *vfs.MemFS, unsyncedPercent int, seed uint64) *vfs.MemFS {
	return fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsyncedPercent, RNG: rand.New(rand.NewPCG(seed, 0))})
}

// A power cut loses at most the changes not yet durable, which Synced
// tells apart, and never leaves the store corrupt: after the cut it opens
// and holds exactly what the changes up to some point left, a point at or
// after the last one Synced covered; each partition's index is one entry
// per key; and the position counter goes on above every position kept.
func TestAPowerCutLosesAtMostTheUnsyncedWindow(t *testing.T) {
	for _, window := range []time.Duration{0, time.Hour} {
		for _, unsynced := range []int{0, 50, 100} {
			t.Run(fmt.Sprintf("window-%v/unsynced-%d%%", window, unsynced), func(t *testing.T) {
				fs := vfs.NewCrashableMem()
				// A memtable of 256 KiB: the changes span flushed tables
				// and the log. A window longer than the test: only Sync
				// makes its changes durable.
				opts := Options{SyncWindow: window, Engine: kit.Options{MemTableSize: 256 << 10}}
				s := open(t, fs, "kv", opts)
				rng := rand.New(rand.NewPCG(uint64(unsynced), uint64(window)))
				m := model{}
				states := []model{clone(m)} // what the store held after each change
				durable := 0                // the last state known durable
				for i := range 1500 {
					changeRandomly(t, s, m, rng, 1)
					states = append(states, clone(m))
					switch {
					case window == 0:
						durable = len(states) - 1 // returned once durable
					case i == 1000:
						if err := s.Sync(); err != nil {
							t.Fatal(err)
						}
						durable = len(states) - 1
					}
				}
				if window > 0 && s.Synced() == s.local {
					t.Fatal("with a window, every change is durable: the test cuts nothing")
				}
				after := open(t, cut(fs, unsynced, uint64(unsynced)), "kv", opts)
				if after.Incarnation() != s.Incarnation() {
					t.Fatal("the incarnation changed across the cut")
				}
				got := model{}
				var last uint64 // the last position kept
				parts, err := after.Partitions()
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range parts {
					err := after.Scan(p, 0, All, true, func(e *Entry) bool {
						got[pk{p, e.Record.Key}] = e.Record
						last = max(last, e.Position)
						return true
					})
					if err != nil {
						t.Fatal(err)
					}
				}
				check(t, after, got)
				kept := -1
				for i := len(states) - 1; i >= 0 && kept < 0; i-- {
					if same(states[i], got) {
						kept = i
					}
				}
				if kept < durable {
					t.Fatalf("after the cut the store holds state #%d (-1: none), want one at or after #%d, the last durable", kept, durable)
				}
				if rec, _ := write(t, after, 0, "probe", "x", false); rec.Version.Seq <= last {
					t.Fatalf("position %d handed out after the cut, which kept position %d", rec.Version.Seq, last)
				}
				t.Logf("kept the state after change #%d of %d; #%d was durable", kept, len(states)-1, durable)
			})
		}
	}
}

// same reports whether a and b hold the same records.
func same(a, b model) bool {
	if len(a) != len(b) {
		return false
	}
	for k, r := range a {
		if o, ok := b[k]; !ok || o.Version != r.Version || o.Deleted != r.Deleted || string(o.Value) != string(r.Value) {
			return false
		}
	}
	return true
}
