package server

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrClosed is returned by a closed Store.
var ErrClosed = errors.New("kv-async: store closed")

// Store keeps the node's data: a write-ahead log (wal.go), the changes of
// the log not yet applied to bbolt (memtable.go), and one bbolt file.
//
// A change (a write, a replicated batch, a copied stream frame) is a
// mutation: it runs under the store's mutation lock, which orders all
// changes, and becomes one log entry. Once written to the log the change
// is visible to reads, through the memtable, and is acknowledged as the
// sync policy says (see StoreOptions.SyncWindow). In the background an
// applier applies the log, many entries per bbolt transaction, to the
// bbolt file, then forgets those changes in the memtable and deletes the
// log segments it no longer needs. bbolt records the last applied entry,
// so a restart replays exactly the entries after it.
//
// In bbolt each partition is a top-level bucket named like the partition
// ("partition-7"), so a partition can be streamed or dropped on its own.
// It holds:
//
//   - data: key -> the key's latest Record (values and tombstones);
//   - index: local sequence number -> arrival time and key, one entry per
//     key, moved to a new number whenever the key's record changes. It is
//     the node's change log: "everything after n" is what a replica that
//     has everything up to n still needs;
//   - cursors: (node, incarnation) -> n, meaning "this node holds every
//     record of that node's index up to n" (see cursorKey);
//   - fence: the highest epoch a replication batch was accepted from.
//
// Local sequence numbers come from one counter per store, so they never
// repeat even when a partition is dropped and gained again. The store's
// incarnation, a random number made when the file is created, tells apart
// two lives of a node ID whose data was wiped.
type Store struct {
	db   *bolt.DB
	inc  uint64
	wal  *wal
	mem  *memtable
	opts StoreOptions

	// wmu is the mutation lock: it orders mutations, and so log entries.
	wmu    sync.Mutex
	local  uint64 // the last local sequence number handed out
	enc    []byte // encoding buffer of log entries
	closed atomic.Bool

	// The applier's queue: log entries written and not yet applied.
	amu      sync.Mutex
	acond    *sync.Cond // broadcast when entries are applied and forgotten
	queue    []*walEntry
	queued   int    // payload bytes in queue
	applied  uint64 // last entry applied to bbolt
	forgot   uint64 // counts the applier's rounds, for waiters
	applyErr error  // sticky
	wake     chan struct{}
	quit     chan struct{}
	done     chan struct{}
	crashed  bool // stop without a last round (tests)
}

// StoreOptions tune a Store. The zero value is a valid configuration.
type StoreOptions struct {
	// SyncWindow is the sync policy. 0 (the default) acknowledges a change
	// once its log entry is fsynced; concurrent changes share an fsync.
	// A positive window acknowledges a change once its entry is written
	// to the operating system (it then survives a crash of the process,
	// not of the machine) provided the oldest entry not yet fsynced is
	// younger than the window; otherwise the change waits for the fsync.
	// A background loop fsyncs the log half a window after a change, so
	// changes seldom wait, and a power loss loses at most the changes
	// acknowledged within one window.
	SyncWindow time.Duration
	// ApplyInterval is how long the applier lets log entries gather
	// before applying them to bbolt in one transaction: a transaction
	// rewrites every page it touches, so the more entries share it, the
	// less each costs. Default 1s.
	ApplyInterval time.Duration
	// MaxQueuedBytes bounds the log entries written and not yet applied;
	// changes wait while it is exceeded. Default 64 MiB.
	MaxQueuedBytes int
	// SegmentBytes is the size of a log segment. Default 64 MiB.
	SegmentBytes int64
	// OnSync, if set, is told the log entries and duration of each fsync
	// of the log.
	OnSync func(entries uint64, d time.Duration)
	// OnApply, if set, is told the log entries, operations and duration
	// of each bbolt transaction of the applier.
	OnApply func(entries, ops int, d time.Duration)
}

func (o *StoreOptions) fillDefaults() {
	if o.ApplyInterval <= 0 {
		o.ApplyInterval = time.Second
	}
	if o.MaxQueuedBytes <= 0 {
		o.MaxQueuedBytes = 64 << 20
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = defaultSegmentBytes
	}
}

var (
	bucketMeta    = []byte("meta")
	bucketData    = []byte("data")
	bucketIndex   = []byte("index")
	bucketCursors = []byte("cursors")
	keyIncarn     = []byte("incarnation")
	keyApplied    = []byte("wal-applied")
	keyFence      = []byte("fence")
)

// OpenStore opens or creates the store in dir (kv.db and the log in
// wal/), replaying the log entries that bbolt does not have yet.
func OpenStore(dir string, opts StoreOptions) (*Store, error) {
	opts.fillDefaults()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	path := filepath.Join(dir, "kv.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         2 * time.Second, // another process holds the file
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: 1 << 30, // address space only: remaps wait for every reader
	})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := &Store{
		db: db, mem: newMemtable(), opts: opts,
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
	}
	s.acond = sync.NewCond(&s.amu)
	if err := s.init(); err != nil {
		db.Close()
		return nil, fmt.Errorf("init %s: %w", path, err)
	}
	var replay []*walEntry
	s.wal, err = openWAL(filepath.Join(dir, "wal"), s.applied, walOptions{SegmentBytes: opts.SegmentBytes, Window: opts.SyncWindow, OnSync: opts.OnSync},
		func(lsn uint64, payload []byte) error {
			ops, err := decodeEntry(payload)
			if err != nil {
				return err
			}
			replay = append(replay, &walEntry{lsn: lsn, ops: ops, size: len(payload)})
			return nil
		})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open log: %w", err)
	}
	if err := s.apply(replay); err != nil {
		s.wal.close()
		db.Close()
		return nil, fmt.Errorf("replay log into %s: %w", path, err)
	}
	// Numbering goes on after the replayed records too.
	for _, e := range replay {
		for i := range e.ops {
			s.local = max(s.local, e.ops[i].rec.local)
		}
	}
	if err := s.wal.removeThrough(s.applied); err != nil {
		s.wal.close()
		db.Close()
		return nil, err
	}
	go s.applyLoop()
	return s, nil
}

// init reads or creates the incarnation, the applied LSN, the local
// sequence counter and the partitions' index heads.
func (s *Store) init() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if b := meta.Get(keyApplied); len(b) == 8 {
			s.applied = binary.BigEndian.Uint64(b)
		}
		s.local = meta.Sequence()
		err = tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if p, ok := parsePartitionName(name); ok {
				if ix := b.Bucket(bucketIndex); ix != nil {
					if k, _ := ix.Cursor().Last(); len(k) == 8 {
						s.mem.heads[p] = binary.BigEndian.Uint64(k)
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if b := meta.Get(keyIncarn); len(b) == 8 {
			s.inc = binary.BigEndian.Uint64(b)
			return nil
		}
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		s.inc = binary.BigEndian.Uint64(b[:]) | 1 // never 0
		return meta.Put(keyIncarn, u64(s.inc))
	})
}

// Incarnation identifies this store file (see Store).
func (s *Store) Incarnation() uint64 { return s.inc }

// Close waits for the mutation in progress, fsyncs the log, applies it to
// bbolt and closes the files. Changes after Close fail with ErrClosed.
func (s *Store) Close() error {
	return s.close(false)
}

// crash closes the store as a crash of the process would leave it: the
// log is written but neither fsynced nor applied. For tests.
func (s *Store) crash() { _ = s.close(true) }

func (s *Store) close(crash bool) error {
	s.wmu.Lock()
	if s.closed.Load() {
		s.wmu.Unlock()
		return nil
	}
	s.closed.Store(true)
	s.wmu.Unlock()
	var errs []error
	if crash {
		s.wal.abandon()
	} else {
		errs = append(errs, s.wal.close())
	}
	s.amu.Lock()
	s.crashed = crash
	s.amu.Unlock()
	close(s.quit)
	<-s.done
	s.amu.Lock()
	if !crash {
		errs = append(errs, s.applyErr)
	}
	s.acond.Broadcast()
	s.amu.Unlock()
	errs = append(errs, s.db.Close())
	return errors.Join(errs...)
}

// Partitions lists the partitions the store holds data for.
func (s *Store) Partitions() ([]int, error) {
	var out []int
	err := s.view(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			if p, ok := parsePartitionName(name); ok {
				out = append(out, p)
			}
			return nil
		})
	})
	for _, p := range s.mem.partitions() {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out, err
}

// DropPartition deletes partition p's data, if any. It waits until no
// change of p is waiting to be applied.
func (s *Store) DropPartition(ctx context.Context, p int) error {
	for {
		s.amu.Lock()
		round := s.forgot
		s.amu.Unlock()
		s.wmu.Lock()
		if s.closed.Load() {
			s.wmu.Unlock()
			return ErrClosed
		}
		if !s.mem.pending(p) {
			err := s.db.Update(func(tx *bolt.Tx) error {
				err := tx.DeleteBucket(partitionName(p))
				if errors.Is(err, bolterrors.ErrBucketNotFound) {
					return nil
				}
				return err
			})
			if err == nil {
				s.mem.drop(p)
			}
			s.wmu.Unlock()
			return err
		}
		last := s.wal.lastLSN()
		s.wmu.Unlock()
		if err := s.wal.sync(last); err != nil {
			return err
		}
		s.kick()
		if err := s.awaitRound(ctx, round); err != nil {
			return err
		}
	}
}

// Barrier returns once every change made before it is fsynced.
func (s *Store) Barrier() error {
	s.wmu.Lock()
	if s.closed.Load() {
		s.wmu.Unlock()
		return ErrClosed
	}
	last := s.wal.lastLSN()
	s.wmu.Unlock()
	return s.wal.sync(last)
}

// view runs fn in a bbolt read transaction.
func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return s.db.View(fn)
}

// visible waits until the change of log entry lsn may be read: once it
// may be acknowledged. Reads never return what a crash could take back
// from an acknowledged-only-once-fsynced store.
func (s *Store) visible(lsn uint64) error {
	if s.opts.SyncWindow > 0 {
		return nil // written to the log before it entered the memtable
	}
	return s.wal.sync(lsn)
}

// Get returns key's record in partition p; found is false when the store
// has no record for key (a tombstone is returned, with Deleted set).
func (s *Store) Get(p int, key string) (rec Record, found bool, err error) {
	if s.closed.Load() {
		return Record{}, false, ErrClosed
	}
	// The memtable first: a change is forgotten there only after bbolt has
	// it, so a miss here is answered by a bbolt transaction begun after.
	if r := s.mem.record(p, key); r != nil {
		if err := s.visible(r.lsn); err != nil {
			return Record{}, false, err
		}
		return r.st.Record, true, nil
	}
	err = s.view(func(tx *bolt.Tx) error {
		pb, err := partition(tx, p, false)
		if err != nil || pb == nil {
			return err
		}
		st, ok, err := pb.get(key)
		rec, found = st.Record, ok
		return err
	})
	return rec, found, err
}

// Write stores a write accepted by the primary of partition p: a value,
// or with deleted a tombstone. check runs inside the mutation, after
// every change made before it: it returns the partition's epoch if this
// node may accept the write, or an error that fails it. The record gets
// Version{epoch, next local sequence number}. A delete of a key that has
// no live value writes nothing and returns existed false. Write returns
// once the record may be acknowledged (see StoreOptions.SyncWindow).
func (s *Store) Write(ctx context.Context, p int, key string, value []byte, deleted bool, check func() (uint64, error)) (rec Record, existed bool, err error) {
	w := []BatchWrite{{Partition: p, Key: key, Value: value, Deleted: deleted, Check: check}}
	if err := s.WriteBatch(ctx, w); err != nil {
		return Record{}, false, err
	}
	return w[0].Record, w[0].Existed, w[0].Err
}

// BatchWrite is one write of WriteBatch: its input (Partition to Check,
// as the arguments of Write) and, once WriteBatch returns, its outcome.
type BatchWrite struct {
	Partition int
	Key       string
	Value     []byte
	Deleted   bool
	Check     func() (uint64, error)

	Record  Record
	Existed bool
	Err     error // from Check, or a failure to read the store
}

// WriteBatch stores writes as Write does, in order, as one log entry:
// each write's Check runs after the writes before it, and a write whose
// Check fails is skipped (its Err set) without failing the others. It
// returns an error, and stores nothing, only if the batch as a whole
// cannot be stored; otherwise it returns once every stored write may be
// acknowledged.
func (s *Store) WriteBatch(ctx context.Context, writes []BatchWrite) error {
	return s.mutate(ctx, func(m *mutation) error {
		for i := range writes {
			if err := m.write(&writes[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// write records w in m. A failed Check is w's outcome; an error returned
// fails the whole mutation.
func (m *mutation) write(w *BatchWrite) error {
	epoch, err := w.Check()
	if err != nil {
		w.Err = err
		return nil
	}
	p, key := w.Partition, w.Key
	// The replaced record, known for a delete (which must know whether
	// the key has a value) or when it is still in the memtable; else the
	// applier looks it up.
	prev, known := m.pending(p, key)
	if w.Deleted {
		h, found, err := m.header(p, key)
		if err != nil {
			return err
		}
		if w.Existed = found && !h.deleted; !w.Existed {
			return nil
		}
		prev, known = h, true
	}
	now := time.Now()
	local := m.nextLocal()
	w.Record = Record{Key: key, Value: w.Value, Version: Version{Epoch: epoch, Seq: local}, Deleted: w.Deleted, Time: now.UnixMilli()}
	if w.Deleted {
		w.Record.Value = nil
	}
	m.put(p, w.Record, local, now, prev.local, known)
	return nil
}

// mutate runs fn, which reads the store and records changes through m, as
// one atomic change: if fn fails, nothing changes. Otherwise the changes
// are logged and visible, and mutate returns once they may be
// acknowledged under the sync policy.
func (s *Store) mutate(ctx context.Context, fn func(m *mutation) error) error {
	if err := s.admit(ctx); err != nil {
		return err
	}
	s.wmu.Lock()
	if s.closed.Load() {
		s.wmu.Unlock()
		return ErrClosed
	}
	m := mutation{s: s}
	err := fn(&m)
	m.done()
	if err != nil || len(m.ops) == 0 {
		s.wmu.Unlock()
		return err
	}
	s.enc = appendEntry(s.enc[:0], m.ops)
	lsn, err := s.wal.append(s.enc)
	if err != nil {
		s.wmu.Unlock()
		return fmt.Errorf("kv-async: store: %w", err)
	}
	s.mem.add(lsn, m.ops)
	s.enqueue(&walEntry{lsn: lsn, ops: m.ops, size: len(s.enc)})
	s.wmu.Unlock()
	if err := s.wal.ack(lsn); err != nil {
		return fmt.Errorf("kv-async: store: %w", err)
	}
	return nil
}

// admit waits while too many log entries wait to be applied, or until
// ctx is done.
func (s *Store) admit(ctx context.Context) error {
	s.amu.Lock()
	defer s.amu.Unlock()
	if s.queued > s.opts.MaxQueuedBytes {
		stop := context.AfterFunc(ctx, func() {
			s.amu.Lock()
			s.acond.Broadcast()
			s.amu.Unlock()
		})
		defer stop()
	}
	for s.queued > s.opts.MaxQueuedBytes && s.applyErr == nil && !s.closed.Load() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.acond.Wait()
	}
	return s.applyErr
}
