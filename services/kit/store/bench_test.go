package store

import (
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// BenchmarkSyncedWrites measures synced single-key updates on the real
// file system from 1, 16 and 64 concurrent writers: the more writers, the
// more updates share an fsync.
func BenchmarkSyncedWrites(b *testing.B) {
	for _, writers := range []int{1, 16, 64} {
		b.Run(strconv.Itoa(writers)+"-writers", func(b *testing.B) {
			s := openAt(b, vfs.Default, b.TempDir(), Options{})
			value := make([]byte, 128)
			var n atomic.Uint64
			b.SetParallelism((writers + 1) / 2) // GOMAXPROCS × this goroutines
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					k := binary.BigEndian.AppendUint64(nil, n.Add(1))
					if err := s.Update(func(tx *Tx) error { return tx.Set(int(k[7])%16, k, value) }); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkGet measures point reads of keys on the real file system.
func BenchmarkGet(b *testing.B) {
	s := openAt(b, vfs.Default, b.TempDir(), Options{Durability: NoSync})
	value := make([]byte, 128)
	const keys = 100_000
	for i := 0; i < keys; i += 1000 {
		err := s.Update(func(tx *Tx) error {
			for j := i; j < i+1000; j++ {
				if err := tx.Set(0, binary.BigEndian.AppendUint64(nil, uint64(j)), value); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	var n atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, found, err := s.Get(0, binary.BigEndian.AppendUint64(nil, n.Add(1)%keys)); err != nil || !found {
				b.Errorf("Get = %v, %v", found, err)
				return
			}
		}
	})
}

// BenchmarkGetAbsent measures point reads of keys the store does not hold
// (what every write of a new key reads first), with the key filter and
// without it, while an update of 16 new keys lands every millisecond.
func BenchmarkGetAbsent(b *testing.B) {
	for _, filter := range []int64{0, -1} {
		name := "filter"
		if filter < 0 {
			name = "no-filter"
		}
		b.Run(name, func(b *testing.B) {
			s := openAt(b, vfs.Default, b.TempDir(), Options{Durability: NoSync, ReadCacheSize: -1, KeyFilterSize: filter})
			value := make([]byte, 128)
			var n atomic.Uint64
			write := func() {
				err := s.Update(func(tx *Tx) error {
					for range 16 {
						k := binary.BigEndian.AppendUint64(nil, n.Add(1)*2654435761)
						if err := tx.Set(int(k[7])%64, k, value); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Error(err)
				}
			}
			for range 200_000 / 16 {
				write()
			}
			stop, done := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(done)
				tick := time.NewTicker(time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						write()
					}
				}
			}()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				k := binary.BigEndian.AppendUint64(nil, uint64(i+1<<40)*2654435761)
				if _, found, err := s.Get(int(k[7])%64, k); err != nil || found {
					b.Fatalf("Get = %v, %v", found, err)
				}
			}
			b.StopTimer()
			close(stop)
			<-done
		})
	}
}

// processCPU returns the CPU time the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkNewKeyBatches measures updates of 16 new random keys each, as a
// node's write batches are, with a sync window, on the real file system;
// cpu-µs/key counts the whole process's CPU, Pebble's flushes and
// compactions included, which a write causes later.
func BenchmarkNewKeyBatches(b *testing.B) {
	s := openAt(b, vfs.Default, b.TempDir(), Options{Durability: Windowed, SyncWindow: 20 * time.Millisecond})
	value := make([]byte, 128)
	rng := rand.New(rand.NewPCG(1, 2))
	key := make([]byte, 16)
	b.ResetTimer()
	start := processCPU(b)
	for range b.N {
		err := s.Update(func(tx *Tx) error {
			for range 16 {
				binary.BigEndian.PutUint64(key, rng.Uint64())
				binary.BigEndian.PutUint64(key[8:], rng.Uint64())
				if _, _, err := tx.Get(int(key[0])%16, key); err != nil {
					return err
				}
				if err := tx.Set(int(key[0])%16, key, value); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(processCPU(b)-start)/float64(time.Microsecond)/float64(16*b.N), "cpu-µs/key")
}
