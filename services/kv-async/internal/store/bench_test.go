package store

import (
	"encoding/binary"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// BenchmarkWriteBatch measures a primary's batches of 16 writes of new
// keys, with the default sync window, on the real file system;
// cpu-µs/write counts the whole process's CPU, Pebble's flushes and
// compactions included, which a write causes later.
func BenchmarkWriteBatch(b *testing.B) {
	s := open(b, vfs.Default, b.TempDir(), Options{SyncWindow: 20 * time.Millisecond})
	value := make([]byte, 128)
	rng := rand.New(rand.NewPCG(1, 2))
	writes := make([]BatchWrite, 16)
	b.ResetTimer()
	start := processCPU(b)
	for range b.N {
		for i := range writes {
			k := binary.BigEndian.AppendUint64(nil, rng.Uint64())
			writes[i] = BatchWrite{Partition: int(k[0]) % 16, Key: string(k), Value: value, Check: epoch(3)}
		}
		if err := s.WriteBatch(writes); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(processCPU(b)-start)/float64(time.Microsecond)/float64(len(writes)*b.N), "cpu-µs/write")
}

// processCPU returns the CPU time the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
