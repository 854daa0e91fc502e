package store

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	kit "clusterkit.dev/services/kit/store"
)

// ErrClosed is returned by a closed Store.
var ErrClosed = kit.ErrClosed

// ErrDiskFull is returned by a change refused because the disk is nearly
// full; it changed nothing. It matches syscall.ENOSPC.
var ErrDiskFull = kit.ErrDiskFull

// Cursor is the fact "this node holds every record of Node's index (in
// its store incarnation Inc) up to Seq" for one partition.
type Cursor struct {
	Node string
	Inc  uint64
	Seq  uint64
}

// Options tune a Store. The zero value is a valid configuration.
type Options struct {
	// SyncWindow is the sync policy. 0 (the default) returns from a change
	// once it is fsynced; concurrent changes share an fsync. A positive
	// window returns once the change is in the log, provided the oldest
	// change not yet fsynced is younger than the window; otherwise the
	// change waits for an fsync. A background loop fsyncs the log half a
	// window after a change, so a power loss loses at most the changes of
	// one window (the shared store's Windowed durability).
	SyncWindow time.Duration
	// OnDurable, if set, is called when changes became durable: after
	// each fsync of the window's loop or of Sync, or after each change
	// with no window. It must be quick.
	OnDurable func()
	// OnSync, if set, is told the duration of each fsync of the window's
	// loop.
	OnSync func(time.Duration)
	// Engine configures the shared store underneath; its Durability,
	// SyncWindow and OnSync are set from the fields above.
	Engine kit.Options
}

// Store is a node's kv-async storage. Its methods are safe for concurrent
// use.
type Store struct {
	kv        *kit.Store
	index     *index // the change log
	inc       uint64
	opened    uint64 // the bound of the positions before this open: those below are durable
	onChange  func() // OnDurable, with no window: every change is durable
	onDurable func() // OnDurable
	closed    atomic.Bool

	// local is the last position handed out, and bound the stored bound
	// of the positions handed out (metaLocal); read and written only
	// inside the shared store's Updates, which run one at a time.
	local, bound uint64
}

// positionSlack is how far above the position that passes it the bound
// of the positions is stored: the bound is written once per
// positionSlack positions rather than with every change, and a restart
// skips at most that many, which is harmless, as positions need only
// grow.
const positionSlack = 1 << 12

// Open opens, creating it if needed, the store in directory dir.
func Open(dir string, opts Options) (*Store, error) {
	eng := opts.Engine
	eng.Durability, eng.SyncWindow, eng.OnSync = kit.Synced, 0, nil
	if opts.SyncWindow > 0 {
		eng.Durability, eng.SyncWindow = kit.Windowed, opts.SyncWindow
		eng.OnSync = func(d time.Duration) {
			if opts.OnSync != nil {
				opts.OnSync(d)
			}
			if opts.OnDurable != nil {
				opts.OnDurable()
			}
		}
	}
	kv, err := kit.Open(dir, eng)
	if err != nil {
		return nil, fmt.Errorf("kv-async: %w", err)
	}
	s := &Store{kv: kv, index: newIndex(), onDurable: opts.OnDurable}
	if opts.SyncWindow <= 0 {
		s.onChange = opts.OnDurable
	}
	if err = s.init(); err == nil {
		err = s.loadIndex()
	}
	if err != nil {
		_ = kv.Close()
		return nil, fmt.Errorf("kv-async: open store %s: %w", dir, err)
	}
	return s, nil
}

// init reads, or makes and stores, the incarnation, and reads the bound
// of the positions handed out, above which positions go on.
func (s *Store) init() error {
	if v, found, err := s.kv.Meta(metaLocal); err != nil {
		return err
	} else if found {
		var ok bool
		if s.local, ok = parseU64(v); !ok {
			return fmt.Errorf("%s: %w", metaLocal, ErrCorrupt)
		}
	}
	s.opened, s.bound = s.local, s.local
	v, found, err := s.kv.Meta(metaIncarnation)
	if err != nil {
		return err
	}
	if found {
		var ok bool
		if s.inc, ok = parseU64(v); !ok {
			return fmt.Errorf("%s: %w", metaIncarnation, ErrCorrupt)
		}
		return nil
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	inc := binary.BigEndian.Uint64(b[:]) | 1 // never 0
	if err := s.kv.Update(func(tx *kit.Tx) error { return tx.SetMeta(metaIncarnation, u64(inc)) }); err != nil {
		return err
	}
	s.inc = inc
	return s.kv.Sync()
}

// Incarnation identifies this store's life (see the package
// documentation).
func (s *Store) Incarnation() uint64 { return s.inc }

// Close waits for the changes in progress, syncs the log and closes the
// store. Later calls return ErrClosed.
func (s *Store) Close() error {
	s.closed.Store(true)
	return s.kv.Close()
}

// Sync returns once every change made before it is durable.
func (s *Store) Sync() error {
	if err := s.kv.Sync(); err != nil {
		return err
	}
	if s.onDurable != nil {
		s.onDurable()
	}
	return nil
}

// Synced returns the index position up to which every change is durable:
// what may be shipped to replicas.
func (s *Store) Synced() uint64 { return max(s.kv.Synced(), s.opened) }

// Get returns key's record in partition p; found is false when the store
// has no record for key (a tombstone is returned, with Deleted set). With
// no SyncWindow it never returns a change that is not durable yet.
func (s *Store) Get(p int, key string) (rec Record, found bool, err error) {
	v, found, err := s.kv.Get(p, dataKey(key))
	if err != nil || !found {
		return Record{}, false, err
	}
	st, err := decodeStored(key, v)
	return st.Record, err == nil, err
}

// Head returns the last position of partition p's index (0: empty),
// durable or not.
func (s *Store) Head(p int) (uint64, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	return s.index.head(p), nil
}

// Cursors returns partition p's cursors.
func (s *Store) Cursors(p int) ([]Cursor, error) {
	var out []Cursor
	_, err := s.kv.Scan(p, nil, 0, func(k, v []byte) error {
		if k[0] != prefixCursor {
			return errStop
		}
		c, ok := parseCursor(k, v)
		if !ok {
			return fmt.Errorf("partition %d cursor %q: %w", p, k, ErrCorrupt)
		}
		out = append(out, c)
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return out, err
}

// errStop ends a scan early.
var errStop = errors.New("stop")

// Partitions lists the partitions the store holds data for.
func (s *Store) Partitions() ([]int, error) { return s.kv.Partitions() }

// Drop deletes partition p's data, cursors and fence if cond, called
// between the changes before and after, returns true (nil: always). It
// reports whether it dropped a partition that held data. cond must be
// quick and must not call the Store. Like every change that only
// deletes, it runs on a full disk.
func (s *Store) Drop(p int, cond func() bool) (bool, error) {
	dropped := false
	err := s.kv.Update(func(tx *kit.Tx) error {
		if cond != nil && !cond() {
			return nil
		}
		held, err := tx.Any(p)
		if err != nil || !held {
			return err
		}
		dropped = true
		tx.OnApplied(func() { s.index.drop(p) })
		return tx.DropPartition(p)
	})
	if err != nil {
		return false, fmt.Errorf("kv-async: store: drop partition %d: %w", p, err)
	}
	return dropped, nil
}
