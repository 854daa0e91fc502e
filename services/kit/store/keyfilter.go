package store

import (
	"hash/maphash"
	"math/bits"
	"sync"
)

// keyFilter is an in-memory Bloom filter of the keys each partition holds,
// so that a point read of a key the store does not hold (every new key a
// write checks first) is answered without a seek through Pebble's
// memtables and levels.
//
// It never forgets a key the store holds: Open fills it from a scan of
// every partition, and an Update adds the keys it sets before Pebble
// applies them. It may answer "maybe" for a key the store does not hold
// (about 1% of absent keys, and the deleted ones), which costs a Pebble
// read. A dropped partition's filter is emptied once the drop is applied.
// A partition whose filter would take the store past its budget (Options.
// KeyFilterSize) is no longer filtered until the store is opened again or
// the partition dropped.
type keyFilter struct {
	seed   maphash.Seed
	budget int64 // bytes all filters may take; 0: off

	mu    sync.RWMutex
	parts map[int]*partFilter
	size  int64 // bytes the filters take
}

// partFilter is one partition's filter: Bloom filters of growing
// capacity, the last of which takes new keys. Keys added past the
// budget make it unfiltered: every key may be there.
type partFilter struct {
	blooms     []*keyBloom
	unfiltered bool
}

// keyBloom is a blocked Bloom filter: a key's bloomProbes probes all fall
// in one 512-bit block (one cache line), so a check costs one memory
// access rather than one per probe. It is sized for cap keys at
// bloomBitsPerKey bits each (about 1% false positives).
type keyBloom struct {
	bits []uint64 // a power-of-two number of blocks of blockWords words
	n    int      // keys added
	cap  int
}

const (
	bloomBitsPerKey = 10
	bloomProbes     = 7
	minBloomKeys    = 1024
	blockWords      = 8 // 512 bits
)

func newBloom(keys int) *keyBloom {
	keys = max(keys, minBloomKeys)
	blocks := 1 << bits.Len64(uint64(keys*bloomBitsPerKey-1)/(64*blockWords))
	words := blocks * blockWords
	return &keyBloom{bits: make([]uint64, words), cap: words * 64 / bloomBitsPerKey}
}

func (b *keyBloom) bytes() int64 { return int64(len(b.bits)) * 8 }

// block returns h's block, and the two hashes its probes are made of.
func (b *keyBloom) block(h uint64) (blk []uint64, h1, h2 uint32) {
	blocks := uint64(len(b.bits) / blockWords)
	i := (h >> 32) & (blocks - 1) * blockWords
	h1 = uint32(h)
	return b.bits[i : i+blockWords], h1, h1>>17 | h1<<15 | 1
}

// add sets h's probes.
func (b *keyBloom) add(h uint64) {
	blk, h1, h2 := b.block(h)
	for i := uint32(0); i < bloomProbes; i++ {
		bit := (h1 + i*h2) % (64 * blockWords)
		blk[bit/64] |= 1 << (bit % 64)
	}
	b.n++
}

// has reports whether every probe of h is set.
func (b *keyBloom) has(h uint64) bool {
	blk, h1, h2 := b.block(h)
	for i := uint32(0); i < bloomProbes; i++ {
		bit := (h1 + i*h2) % (64 * blockWords)
		if blk[bit/64]&(1<<(bit%64)) == 0 {
			return false
		}
	}
	return true
}

// init readies f with a budget of size bytes (off if size <= 0).
func (f *keyFilter) init(size int64) {
	f.seed = maphash.MakeSeed()
	f.budget = max(size, 0)
	f.parts = map[int]*partFilter{}
}

func (f *keyFilter) hash(key []byte) uint64 { return maphash.Bytes(f.seed, key) }

// load sets partition p's filter to hold the keys of hashes, at the start.
func (f *keyFilter) load(p int, hashes []uint64) {
	if f.budget == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b := newBloom(2 * len(hashes)) // room to grow before the next filter
	pf := &partFilter{}
	f.parts[p] = pf
	if !f.take(pf, b) {
		return
	}
	for _, h := range hashes {
		b.add(h)
	}
}

// take counts b against the budget and gives it to pf, or, if it does not
// fit, makes pf unfiltered; it reports which.
func (f *keyFilter) take(pf *partFilter, b *keyBloom) bool {
	if f.size+b.bytes() > f.budget {
		for _, old := range pf.blooms {
			f.size -= old.bytes()
		}
		pf.blooms, pf.unfiltered = nil, true
		return false
	}
	f.size += b.bytes()
	pf.blooms = append(pf.blooms, b)
	return true
}

// add notes that partition p holds key.
func (f *keyFilter) add(p int, key []byte) {
	if f.budget == 0 {
		return
	}
	h := f.hash(key)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addLocked(p, h)
}

func (f *keyFilter) addLocked(p int, h uint64) {
	pf := f.parts[p]
	if pf == nil {
		pf = &partFilter{}
		f.parts[p] = pf
		if !f.take(pf, newBloom(0)) {
			return
		}
	}
	if pf.unfiltered {
		return
	}
	last := pf.blooms[len(pf.blooms)-1]
	if last.n >= last.cap {
		total := 0
		for _, b := range pf.blooms {
			total += b.n
		}
		if last = newBloom(2 * total); !f.take(pf, last) {
			return
		}
	}
	last.add(h)
}

// mayHold reports whether partition p may hold key: false only if it
// certainly does not.
func (f *keyFilter) mayHold(p int, key []byte) bool {
	if f.budget == 0 {
		return true
	}
	h := f.hash(key)
	f.mu.RLock()
	defer f.mu.RUnlock()
	pf := f.parts[p]
	if pf == nil {
		return false
	}
	if pf.unfiltered {
		return true
	}
	for _, b := range pf.blooms {
		if b.has(h) {
			return true
		}
	}
	return false
}

// dropped empties partition p's filter once a drop was applied, but for
// keys, which the dropping update set and p may therefore hold; it does so
// under one lock, so that no read finds them missing meanwhile.
func (f *keyFilter) dropped(p int, keys [][]byte) {
	if f.budget == 0 {
		return
	}
	hashes := make([]uint64, len(keys))
	for i, k := range keys {
		hashes[i] = f.hash(k)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if pf := f.parts[p]; pf != nil {
		for _, b := range pf.blooms {
			f.size -= b.bytes()
		}
		delete(f.parts, p)
	}
	for _, h := range hashes {
		f.addLocked(p, h)
	}
}
