package records_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// BenchmarkWrite measures durable writes from 16 concurrent writers, which
// share fsyncs.
func BenchmarkWrite(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "kv"))
	value := []byte(strings.Repeat("v", 128))
	b.SetParallelism(8)
	b.ResetTimer()
	var seq atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			r := Record{Key: fmt.Sprintf("key-%d", i%10000), Value: value, Version: Version{1, i}}
			if _, err := s.Write(int(i%16), r); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkWriteSerial measures durable writes one after another: an
// fsync each.
func BenchmarkWriteSerial(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "kv"))
	value := []byte(strings.Repeat("v", 128))
	for i := 1; b.Loop(); i++ {
		r := Record{Key: fmt.Sprintf("key-%d", i%10000), Value: value, Version: Version{1, uint64(i)}}
		if _, err := s.Write(i%16, r); err != nil {
			b.Fatal(err)
		}
	}
}
