package store

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// BenchmarkWrite measures durable writes from 16 concurrent writers, which
// the writer commits in groups.
func BenchmarkWrite(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "kv.db"))
	value := []byte(strings.Repeat("v", 128))
	b.SetParallelism(8)
	b.ResetTimer()
	var seq atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			r := Record{Key: fmt.Sprintf("key-%d", i%10000), Value: value, Version: Version{Epoch: 1, Seq: i}}
			if _, err := s.Write(int(i%16), r); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkWriteSerial(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "kv.db"))
	value := []byte(strings.Repeat("v", 128))
	for i := 1; b.Loop(); i++ {
		r := Record{Key: fmt.Sprintf("key-%d", i%10000), Value: value, Version: Version{Epoch: 1, Seq: uint64(i)}}
		if _, err := s.Write(i%16, r); err != nil {
			b.Fatal(err)
		}
	}
}
