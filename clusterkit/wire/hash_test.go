package wire

import (
	"fmt"
	"hash/fnv"
	"math"
	"testing"

	"pgregory.net/rapid"
)

// The hash is a wire contract: clients in any language must compute these
// exact values, so they are pinned here.
func TestKeyHashIsStable(t *testing.T) {
	for _, tc := range []struct {
		key       string
		hash      uint64
		p16, p271 int
	}{
		{"", 0xefd01f60ba992926, 6, 261},
		{"a", 0x82a2a958a9bece5b, 11, 165},
		{"user:123", 0x984080e52cd1950c, 12, 40},
		{"session:abc", 0x494d82260445e282, 2, 237},
	} {
		if got := KeyHash(tc.key); got != tc.hash {
			t.Errorf("KeyHash(%q) = %#x, want %#x", tc.key, got, tc.hash)
		}
		if got := PartitionIndex(tc.key, 16); got != tc.p16 {
			t.Errorf("PartitionIndex(%q, 16) = %d, want %d", tc.key, got, tc.p16)
		}
		if got := PartitionIndex(tc.key, 271); got != tc.p271 {
			t.Errorf("PartitionIndex(%q, 271) = %d, want %d", tc.key, got, tc.p271)
		}
	}
}

// KeyHash is FNV-1a-64 followed by MurmurHash3's fmix64: check it against
// the standard library's FNV on random keys.
func TestKeyHashMatchesStdlibFNV(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		key := rapid.String().Draw(t, "key")
		f := fnv.New64a()
		f.Write([]byte(key))
		h := f.Sum64()
		h ^= h >> 33
		h *= 0xff51afd7ed558ccd
		h ^= h >> 33
		h *= 0xc4ceb9fe1a85ec53
		h ^= h >> 33
		if got := KeyHash(key); got != h {
			t.Fatalf("KeyHash(%q) = %#x, want %#x", key, got, h)
		}
	})
}

func TestPartitionIndexIsUniform(t *testing.T) {
	for _, p := range []int{16, 64, 271, 4096} {
		counts := make([]int, p)
		n := 200 * p
		for i := 0; i < n; i++ {
			counts[PartitionIndex(fmt.Sprintf("key-%d", i), p)]++
		}
		// Chi-square against uniform; with p-1 degrees of freedom the
		// statistic has mean p-1 and sd sqrt(2(p-1)); allow 5 sd.
		exp := float64(n) / float64(p)
		chi := 0.0
		for _, c := range counts {
			d := float64(c) - exp
			chi += d * d / exp
		}
		df := float64(p - 1)
		if limit := df + 5*math.Sqrt(2*df); chi > limit {
			t.Errorf("P=%d: chi-square %.1f > %.1f: keys are not spread evenly", p, chi, limit)
		}
	}
}
