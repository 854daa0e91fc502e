package store

import (
	"bytes"
	"hash/maphash"
	"sync"
)

// readCache keeps the latest value of recently read keys, and the absence
// of recently read missing ones, in front of Pebble. A point
// read in Pebble seeks the skiplist of every memtable not yet flushed and
// the tables of each level; the services read every key before they write
// it (the newer version wins) and read keys soon after writing them, so
// most of their reads are answered here.
//
// The cache holds exactly what Pebble holds for a key, or nothing: Updates
// put what they applied to the keys it holds, under the Store's mu and after Pebble made it
// visible; a read that missed fills the cache only if no Update touched
// the key's shard since the read began (the shard's seq), so a slow
// reader never puts back a value an Update replaced. Whether a value may
// be returned yet (its fsync done) is decided by the flights, as for a
// value read from Pebble.
type readCache struct {
	seed   maphash.Seed
	shards []cacheShard // nil: the cache is off
}

// cacheShard is one lock's worth of the cache.
type cacheShard struct {
	mu      sync.Mutex
	entries map[string]cacheEntry
	bytes   int64
	budget  int64
	seq     uint64 // bumped by every Update that touches the shard
}

// cacheEntry is a key's value, or its absence.
type cacheEntry struct {
	value []byte
	found bool
}

// cacheShards is the number of shards: enough that concurrent readers
// rarely wait on one another's lock.
const cacheShards = 32

// entryOverhead approximates the bytes an entry costs besides its key and
// value: the map's slot, the string and slice headers.
const entryOverhead = 64

func (c *readCache) init(size int64) {
	if size <= 0 {
		return
	}
	c.seed = maphash.MakeSeed()
	c.shards = make([]cacheShard, cacheShards)
	for i := range c.shards {
		c.shards[i].entries = map[string]cacheEntry{}
		c.shards[i].budget = size / cacheShards
	}
}

func (c *readCache) shard(k []byte) *cacheShard {
	return &c.shards[maphash.Bytes(c.seed, k)%cacheShards]
}

// get returns k's cached value (a copy) and whether it was cached. On a
// miss it returns the shard's seq, to be passed to fill.
func (c *readCache) get(k []byte) (value []byte, found, cached bool, seq uint64) {
	if c.shards == nil {
		return nil, false, false, 0
	}
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.entries[string(k)]
	if !ok {
		return nil, false, false, sh.seq
	}
	if e.found {
		value = bytes.Clone(e.value)
		if value == nil {
			value = []byte{}
		}
	}
	return value, e.found, true, 0
}

// fill caches what a read of k found in Pebble, unless an Update touched
// k's shard since get returned seq.
func (c *readCache) fill(k, value []byte, found bool, seq uint64) {
	if c.shards == nil {
		return
	}
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.seq != seq {
		return
	}
	sh.put(string(k), bytes.Clone(value), found)
}

// applied records the writes of an Update that Pebble has made visible:
// keys[i] now holds values[i] (nil with deleted[i]: absent; nil without:
// not copied, as the key was not cached), and the partitions in drops hold
// nothing. Only keys already cached are updated: a key enters the cache
// when it is read, so keys that are written and never read (a change log)
// cost the cache nothing. It must be called under the Store's
// mu, which orders Updates.
func (c *readCache) applied(keys []string, values [][]byte, deleted []bool, drops []int) {
	if c.shards == nil {
		return
	}
	if len(drops) > 0 {
		c.dropPartitions(drops)
	}
	for i, k := range keys {
		sh := c.shard([]byte(k))
		sh.mu.Lock()
		sh.seq++
		if old, ok := sh.entries[k]; ok {
			if values[i] != nil || deleted[i] {
				sh.put(k, values[i], !deleted[i])
			} else {
				// Cached by a read after the Update took its copies, or
				// the Update failed (forget).
				delete(sh.entries, k)
				sh.bytes -= entrySize(k, old.value)
			}
		}
		sh.mu.Unlock()
	}
}

// holds reports whether stored key k is cached: an Update keeps a copy of
// what it writes only for the keys it will have to update.
func (c *readCache) holds(k []byte) bool {
	if c.shards == nil {
		return false
	}
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	_, ok := sh.entries[string(k)]
	return ok
}

// dropPartitions forgets every key of the partitions and makes the reads
// in progress in every shard leave the cache alone.
func (c *readCache) dropPartitions(parts []int) {
	prefixes := make([][]byte, len(parts))
	for i, p := range parts {
		prefixes[i] = appendPartition(nil, p)
	}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.seq++
		for k, e := range sh.entries {
			for _, pre := range prefixes {
				if len(k) >= len(pre) && k[:len(pre)] == string(pre) {
					delete(sh.entries, k)
					sh.bytes -= entrySize(k, e.value)
					break
				}
			}
		}
		sh.mu.Unlock()
	}
}

// put stores an entry, evicting others while the shard is over its
// budget. The map's random iteration order makes the victims random.
func (sh *cacheShard) put(k string, value []byte, found bool) {
	if old, ok := sh.entries[k]; ok {
		sh.bytes -= entrySize(k, old.value)
	}
	if !found {
		value = nil
	}
	size := entrySize(k, value)
	if size > sh.budget {
		delete(sh.entries, k)
		return
	}
	sh.entries[k] = cacheEntry{value: value, found: found}
	sh.bytes += size
	if sh.bytes <= sh.budget {
		return
	}
	// Evict an eighth of the budget at once: each start of an iteration
	// of a large map costs as much as many evictions, and a full cache
	// would otherwise start one at every put.
	room := sh.budget - sh.budget/evictFraction
	for victim, e := range sh.entries {
		if sh.bytes <= room {
			break
		}
		if victim == k {
			continue
		}
		delete(sh.entries, victim)
		sh.bytes -= entrySize(victim, e.value)
	}
}

// evictFraction is the share of a shard's budget a full shard frees at
// once: 1/8.
const evictFraction = 8

func entrySize(k string, value []byte) int64 {
	return int64(len(k) + len(value) + entryOverhead)
}

// forget drops the keys and partitions from the cache: an Update that
// wrote them failed, and what Pebble holds for them is not known here.
// A key with no value copied and not deleted is dropped by applied.
func (c *readCache) forget(keys []string, drops []int) {
	c.applied(keys, make([][]byte, len(keys)), make([]bool, len(keys)), drops)
}
