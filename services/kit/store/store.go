package store

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// ErrClosed is returned by every method of a closed Store.
var ErrClosed = errors.New("store: closed")

// Store is a node's key-value storage. Its methods are safe for
// concurrent use.
type Store struct {
	db      *pebble.DB
	opts    Options
	dir     string
	hadData bool

	// mu orders Updates: each reads and decides under it, then applies
	// its batch to Pebble before releasing it.
	mu     sync.Mutex
	closed bool
	active sync.WaitGroup // Updates past the closed check

	cache   readCache // the latest values of recently used keys
	keys    keyFilter // which keys each partition may hold
	flights flights   // synced updates whose fsync is running
	marks   marks     // the updates' marks, applied and durable
	disk    diskRoom  // the free space, measured now and then
	window  *window   // the Windowed durability's sync loop, or nil

	shut atomic.Bool // set once Close began: reads fail

	// betweenReadAndFill, if set, runs after a read of Pebble and before
	// the read cache is filled with what it found (tests).
	betweenReadAndFill func()
}

// Open opens the store in directory dir, creating it if needed. Pebble
// replays its log, so every update that returned before a crash is there.
func Open(dir string, opts Options) (*Store, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	if err := opts.FS.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("store: create %s: %w", dir, err)
	}
	s := &Store{opts: opts, dir: dir}
	s.flights.init()
	s.cache.init(opts.ReadCacheSize)
	s.keys.init(opts.KeyFilterSize)
	cache := pebble.NewCache(opts.CacheSize)
	defer cache.Unref()
	db, err := pebble.Open(dir, opts.pebbleOptions(cache, s.disk.events(opts.Logger)))
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	s.db = db
	if s.hadData, err = s.loadKeys(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	if opts.Durability == Windowed {
		s.window = startWindow(s)
	}
	return s, nil
}

// loadKeys fills the key filter from a scan of every partition's keys and
// reports whether there was any.
func (s *Store) loadKeys() (bool, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{partitionPrefix},
		UpperBound: []byte{partitionPrefix + 1},
	})
	if err != nil {
		return false, err
	}
	held := false
	if s.keys.budget == 0 {
		held = it.First()
		return held, errors.Join(it.Error(), it.Close())
	}
	p, hashes := -1, []uint64(nil)
	for valid := it.First(); valid; valid = it.Next() {
		q, key, ok := splitPartitionKey(it.Key())
		if !ok {
			continue
		}
		if q != p && p >= 0 {
			s.keys.load(p, hashes)
			hashes = hashes[:0]
		}
		p, held = q, true
		hashes = append(hashes, s.keys.hash(key))
	}
	if p >= 0 {
		s.keys.load(p, hashes)
	}
	return held, errors.Join(it.Error(), it.Close())
}

// HadData reports whether a partition held a key when the store was
// opened: the node is restarting rather than starting afresh.
func (s *Store) HadData() bool { return s.hadData }

// Close waits for the Updates in progress, syncs the log, and closes the
// database. Later calls return ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.mu.Unlock()
	s.active.Wait()
	var errs []error
	if s.window != nil {
		errs = append(errs, s.window.stop())
	}
	s.shut.Store(true)
	if s.opts.Durability != Synced {
		errs = append(errs, s.syncLog())
	}
	errs = append(errs, s.db.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("store: close %s: %w", s.dir, err)
	}
	return nil
}

// syncLog fsyncs Pebble's log: every update applied before is durable
// once it returns.
func (s *Store) syncLog() error {
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("store: sync: %w", err)
	}
	return nil
}

// Get returns the value of key in partition p; found is false when the
// key is not there. The value is a copy the caller owns. With Synced
// durability it never returns a write whose fsync has not completed.
func (s *Store) Get(p int, key []byte) (value []byte, found bool, err error) {
	if err := checkPartition(p); err != nil {
		return nil, false, err
	}
	k := partitionKey(p, key)
	value, found, err = s.get(k)
	if err != nil {
		return nil, false, err
	}
	// Whatever the read saw, an update that wrote the key or dropped the
	// partition and is still syncing may have written it: wait for that
	// fsync, which covers every update applied before it.
	if err := s.flights.wait(k, p); err != nil {
		return nil, false, err
	}
	return value, found, nil
}

// readPebble reads stored key k from Pebble; the value is a copy.
func (s *Store) readPebble(k []byte) ([]byte, bool, error) {
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: get: %w", err)
	}
	v = bytes.Clone(v)
	if v == nil {
		v = []byte{}
	}
	return v, true, closer.Close()
}

// get reads stored key k.
func (s *Store) get(k []byte) ([]byte, bool, error) {
	if s.shut.Load() {
		return nil, false, ErrClosed
	}
	v, found, cached, seq := s.cache.get(k)
	if cached {
		return v, found, nil
	}
	if p, key, ok := splitPartitionKey(k); ok && !s.keys.mayHold(p, key) {
		// Absent, as Pebble would say, without its seek. The cache takes
		// the absence as from a Pebble read: the key's write, which
		// usually follows, then keeps the cache up to date, and a read
		// soon after the write finds it there.
		s.cache.fill(k, nil, false, seq)
		return nil, false, nil
	}
	v, found, err := s.readPebble(k)
	if s.betweenReadAndFill != nil {
		s.betweenReadAndFill()
	}
	if err != nil {
		return nil, false, err
	}
	s.cache.fill(k, v, found, seq)
	return v, found, nil
}

// Meta returns the metadata entry name; found is false when it was never
// set.
func (s *Store) Meta(name string) (value []byte, found bool, err error) {
	k := metaKey(name)
	if value, found, err = s.get(k); err != nil {
		return nil, false, err
	}
	if err := s.flights.wait(k, -1); err != nil {
		return nil, false, err
	}
	return value, found, nil
}

// Scan calls fn with up to limit keys of partition p and their values, in
// key order, starting after the key after (nil for the first); limit 0
// means no limit. It returns the number of keys it passed to fn, so a
// result under limit means the partition has no more keys. The slices fn
// is given are valid only during the call. The keys come from one
// snapshot of the partition, so a long copy proceeds by many short Scans.
// A Scan returns once every update it saw is durable.
func (s *Store) Scan(p int, after []byte, limit int, fn func(key, value []byte) error) (int, error) {
	if err := checkPartition(p); err != nil {
		return 0, err
	}
	if s.shut.Load() {
		return 0, ErrClosed
	}
	lower, upper := partitionBounds(p)
	if after != nil {
		// The first key after `after` is after + "\x00".
		lower = append(append(lower, after...), 0)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return 0, fmt.Errorf("store: scan partition %d: %w", p, err)
	}
	// Every update applied before the iterator was made may be in its
	// view: wait for the last one's fsync.
	last := s.flights.latest()
	n := 0
	for valid := it.First(); valid && (limit <= 0 || n < limit); valid = it.Next() {
		v, err := it.ValueAndErr()
		if err == nil {
			err = fn(it.Key()[partitionKeyLen:], v)
		}
		if err != nil {
			_ = it.Close()
			return n, err
		}
		n++
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return n, fmt.Errorf("store: scan partition %d: %w", p, err)
	}
	return n, last.wait()
}

// Partitions returns the partitions that hold at least one key, in
// order.
func (s *Store) Partitions() ([]int, error) {
	if s.shut.Load() {
		return nil, ErrClosed
	}
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{partitionPrefix},
		UpperBound: []byte{partitionPrefix + 1},
	})
	if err != nil {
		return nil, fmt.Errorf("store: partitions: %w", err)
	}
	var ps []int
	for valid := it.First(); valid; {
		p, _, ok := splitPartitionKey(it.Key())
		if !ok {
			break
		}
		ps = append(ps, p)
		_, next := partitionBounds(p)
		valid = it.SeekGE(next)
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, fmt.Errorf("store: partitions: %w", err)
	}
	return ps, nil
}
