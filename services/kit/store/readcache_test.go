package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// pebbleValue reads stored key k from Pebble itself, past the cache.
func pebbleValue(t *testing.T, s *Store, k []byte) ([]byte, bool) {
	t.Helper()
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false
	}
	if err != nil {
		t.Fatalf("pebble Get: %v", err)
	}
	defer closer.Close()
	return bytes.Clone(v), true
}

// TestTheReadCacheAgreesWithPebble races readers, which fill the cache
// from Pebble, against Updates that set, delete and drop partitions, with
// a cache small enough to evict; afterwards every key the cache holds
// must hold what Pebble holds, and every read must have returned a value
// some Update wrote.
func TestTheReadCacheAgreesWithPebble(t *testing.T) {
	for _, d := range []Durability{Synced, NoSync} {
		t.Run(d.String(), func(t *testing.T) {
			s := openAt(t, vfs.NewMem(), "kv", Options{Durability: d, ReadCacheSize: 64 << 10})
			const parts, keys = 4, 200
			key := func(i int) []byte { return []byte(fmt.Sprintf("k%03d", i)) }
			written := sync.Map{} // "p/key/value" of every value written
			var wg sync.WaitGroup
			for w := range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := rand.New(rand.NewPCG(uint64(w), 1))
					for i := range 600 {
						err := s.Update(func(tx *Tx) error {
							p, k := r.IntN(parts), key(r.IntN(keys))
							switch n := r.IntN(100); {
							case n < 2:
								return tx.DropPartition(p)
							case n < 20:
								return tx.Delete(p, k)
							default:
								v := fmt.Sprintf("w%d-%d", w, i)
								written.Store(fmt.Sprintf("%d/%s/%s", p, k, v), true)
								return tx.Set(p, k, []byte(v))
							}
						})
						if err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			for rd := range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := rand.New(rand.NewPCG(uint64(rd), 2))
					for range 3000 {
						p, k := r.IntN(parts), key(r.IntN(keys))
						v, found, err := s.Get(p, k)
						if err != nil {
							t.Error(err)
							return
						}
						if _, ok := written.Load(fmt.Sprintf("%d/%s/%s", p, k, v)); found && !ok {
							t.Errorf("Get(%d, %s) = %q, which no Update wrote", p, k, v)
						}
					}
				}()
			}
			wg.Wait()

			for p := range parts {
				for i := range keys {
					v, found, err := s.Get(p, key(i))
					if err != nil {
						t.Fatal(err)
					}
					pv, pfound := pebbleValue(t, s, partitionKey(p, key(i)))
					if found != pfound || !bytes.Equal(v, pv) {
						t.Errorf("Get(%d, %s) = %q (found %v), Pebble %q (found %v)", p, key(i), v, found, pv, pfound)
					}
				}
			}
			cachedKeys := 0
			for i := range s.cache.shards {
				sh := &s.cache.shards[i]
				var bytesHeld int64
				for k, e := range sh.entries {
					bytesHeld += entrySize(k, e.value)
					v, found := pebbleValue(t, s, []byte(k))
					if found != e.found || !bytes.Equal(v, e.value) {
						t.Errorf("cache holds %q = %q (found %v), Pebble %q (found %v)", k, e.value, e.found, v, found)
					}
					cachedKeys++
				}
				if bytesHeld != sh.bytes || sh.bytes > sh.budget {
					t.Errorf("shard %d: counts %d bytes, holds %d, budget %d", i, sh.bytes, bytesHeld, sh.budget)
				}
			}
			if cachedKeys == 0 {
				t.Fatal("the cache held nothing")
			}
		})
	}
}

// TestADropEmptiesTheCacheOfThePartition reads keys of two partitions
// into the cache, drops one, and reads again.
func TestADropEmptiesTheCacheOfThePartition(t *testing.T) {
	s := openAt(t, vfs.NewMem(), "kv", Options{})
	for p := range 2 {
		for i := range 10 {
			set(t, s, p, fmt.Sprint("k", i), "v")
		}
	}
	for p := range 2 {
		for i := range 10 {
			wantValue(t, s, p, fmt.Sprint("k", i), "v", true)
		}
	}
	if err := s.Update(func(tx *Tx) error { return tx.DropPartition(0) }); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		wantValue(t, s, 0, fmt.Sprint("k", i), "", false)
		wantValue(t, s, 1, fmt.Sprint("k", i), "v", true)
	}
}

// TestTheReadCacheCanBeTurnedOff: a negative size keeps no entries and
// the store still reads what it wrote.
func TestTheReadCacheCanBeTurnedOff(t *testing.T) {
	s := openAt(t, vfs.NewMem(), "kv", Options{ReadCacheSize: -1})
	set(t, s, 0, "a", "1")
	wantValue(t, s, 0, "a", "1", true)
	wantValue(t, s, 0, "b", "", false)
	if s.cache.shards != nil {
		t.Fatal("the cache is on")
	}
}

// TestAFailedApplyForgetsTheKeys: a cached key whose Update failed in
// Pebble is read from Pebble again.
func TestAFailedApplyForgetsTheKeys(t *testing.T) {
	s := openAt(t, vfs.NewMem(), "kv", Options{})
	set(t, s, 0, "a", "1")
	wantValue(t, s, 0, "a", "1", true)
	k := partitionKey(0, []byte("a"))
	s.afterApply(&Tx{keys: []string{string(k)}}, errors.New("apply failed"))
	if _, _, cached, _ := s.cache.get(k); cached {
		t.Fatal("the key is still cached after a failed apply")
	}
	wantValue(t, s, 0, "a", "1", true)
}

// TestASlowReadDoesNotCacheWhatAnUpdateReplaced holds a read between its
// Pebble read and its cache fill while an Update writes the key: the
// stale value must not enter the cache.
func TestASlowReadDoesNotCacheWhatAnUpdateReplaced(t *testing.T) {
	for _, before := range []string{"deleted", "old"} {
		t.Run("before="+before, func(t *testing.T) {
			s := openAt(t, vfs.NewMem(), "kv", Options{})
			// A key the store never held is answered by the key filter
			// without a Pebble read; a deleted one is read from Pebble.
			set(t, s, 0, "a", before)
			if before == "deleted" {
				if err := s.Update(func(tx *Tx) error { return tx.Delete(0, []byte("a")) }); err != nil {
					t.Fatal(err)
				}
			}
			s.cache.forget([]string{string(partitionKey(0, []byte("a")))}, nil)
			read, resume := make(chan struct{}), make(chan struct{})
			s.betweenReadAndFill = func() {
				close(read)
				<-resume
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				_, _, _ = s.Get(0, []byte("a"))
			}()
			select {
			case <-read:
			case <-time.After(10 * time.Second):
				t.Fatal("the read did not reach Pebble")
			}
			s.betweenReadAndFill = nil
			set(t, s, 0, "a", "new")
			close(resume)
			<-done
			wantValue(t, s, 0, "a", "new", true)
		})
	}
}
