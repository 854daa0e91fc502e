package placement

// Tie-breaking uses a fixed 64-bit hash so that every run, on every
// platform, breaks ties the same way without favouring nodes whose IDs
// sort first.

// hashString returns the 64-bit FNV-1a hash of s, finalised by mix.
func hashString(s string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime
	}
	return mix(h)
}

// mix is the SplitMix64 finaliser: a bijection on uint64 whose output bits
// each depend on every input bit.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// pairHash combines two values into one well-mixed hash.
func pairHash(a, b uint64) uint64 {
	return mix(a ^ mix(b+0x9e3779b97f4a7c15))
}
