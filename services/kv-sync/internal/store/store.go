// Package store keeps a node's key-value records durably, every key with a
// Version and every delete kept as a tombstone, one bbolt bucket per
// partition. A partition can therefore be scanned and sent to another
// node, which merges it by version: the newer write of a key wins, whatever
// order writes, copies and replicas arrive in.
//
// A write is durable once it is in the write-ahead log: it is appended to
// the log and returns once an fsync covered it (group commit: concurrent
// writers share one fsync). It is kept in memory, where reads find it,
// until the applier has merged it into the bbolt file in the background,
// many writes per transaction. On open, the log is replayed into bbolt.
package store

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Errors returned by Store.
var (
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("store: closed")
)

const (
	// applyEvery is how long the applier lets written records gather
	// before it merges them into bbolt: one bbolt commit (two fsyncs and a
	// page per touched leaf) then covers many writes.
	applyEvery = 200 * time.Millisecond
	// maxPending bounds the records written but not yet applied to bbolt:
	// writers wait while the applier catches up.
	maxPending = 1 << 16
)

// Store is a node's record store. Its methods are safe for concurrent use.
type Store struct {
	db         *bolt.DB
	log        *wal
	hadData    bool
	applyEvery time.Duration

	// mu orders writes: a write decides whether it is newer, appends to
	// the log and enters the pending records under it, so the log's order
	// is the order of those decisions. It guards the fields below.
	mu      sync.RWMutex
	roomy   *sync.Cond // on mu's write lock: broadcast when pending shrinks or the store closes
	pending map[pkey]*pendingRecord
	closed  bool
	err     error // sticky failure of the log or the applier

	// applyMu serializes applier rounds and drops.
	applyMu sync.Mutex
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

// pkey names a key in a partition.
type pkey struct {
	partition int
	key       string
}

// pendingRecord is a record in the log and not yet in bbolt, with the
// LSN of the log entry that holds it.
type pendingRecord struct {
	rec Record
	lsn uint64
}

// Options tune a Store.
type Options struct {
	// NoSync skips the fsyncs of the log and of bbolt: a write returns
	// once it is in the operating system's page cache. It survives a crash
	// of the process but not of the machine. Replication to other machines
	// can make up for that; a single node cannot.
	NoSync bool

	// applyEvery replaces the package's applyEvery (tests).
	applyEvery time.Duration
}

// Open opens (creating if needed) the store file at path, with its log in
// the directory beside it (path with the extension .wal), replays the log
// into the file and starts the applier. It fails after a second if another
// process holds the file.
func Open(path string, opts Options) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("store: create directory: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:        time.Second,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
		NoSync:         opts.NoSync,
	})
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	logDir := strings.TrimSuffix(path, filepath.Ext(path)) + walSuffix
	var log *wal
	err = db.Update(func(tx *bolt.Tx) error {
		var err error
		log, err = openWAL(logDir, walOptions{NoSync: opts.NoSync}, func(_ uint64, payload []byte) error {
			return replayEntry(tx, payload)
		})
		return err
	})
	if err == nil {
		// Every entry is in bbolt now: the replayed segments can go.
		err = log.removeThrough(log.lastLSN())
	}
	if err != nil {
		if log != nil {
			_ = log.close()
		}
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s := &Store{
		db:         db,
		log:        log,
		pending:    map[pkey]*pendingRecord{},
		applyEvery: cmp.Or(opts.applyEvery, applyEvery),
		wake:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	s.roomy = sync.NewCond(&s.mu)
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
			if k, _ := b.Cursor().First(); k != nil {
				s.hadData = true
			}
			return nil
		})
	})
	if err != nil {
		_ = log.close()
		db.Close()
		return nil, fmt.Errorf("store: read %s: %w", path, err)
	}
	go s.applyLoop()
	return s, nil
}

// replayEntry applies one log entry to bbolt inside tx.
func replayEntry(tx *bolt.Tx, payload []byte) error {
	var name [24]byte
	return decodeEntry(payload, func(e Entry) error {
		b, err := tx.CreateBucketIfNotExists(bucketName(name[:0], e.Partition))
		if err != nil {
			return err
		}
		_, _, err = merge(b, &e.Record)
		return err
	}, func(p int) error {
		err := tx.DeleteBucket(bucketName(name[:0], p))
		if errors.Is(err, berrors.ErrBucketNotFound) {
			return nil
		}
		return err
	})
}

// HadData reports whether the store held records when it was opened: the
// node is restarting rather than starting afresh.
func (s *Store) HadData() bool { return s.hadData }

// Close waits for the writes in progress, applies every logged write to
// the bbolt file, and closes the log and the file. Later calls return
// ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.roomy.Broadcast()
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	err := s.log.close()
	return errors.Join(err, s.db.Close())
}

// Get returns key's record in partition p, tombstones included; found is
// false when the key was never written (or its partition was dropped). A
// record still on its way to the disk is returned once it is there. The
// record's Value must not be modified.
func (s *Store) Get(p int, key string) (r Record, found bool, err error) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return r, false, ErrClosed
	}
	pr := s.pending[pkey{p, key}]
	var lsn uint64
	if pr != nil {
		r, lsn = pr.rec, pr.lsn
	}
	s.mu.RUnlock()
	if pr != nil {
		// Never answer with a write that a crash could still take back.
		if err := s.log.sync(lsn); err != nil {
			return Record{}, false, err
		}
		return r, true, nil
	}
	var name [24]byte
	err = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName(name[:0], p))
		if b == nil {
			return nil
		}
		v := b.Get([]byte(key))
		if v == nil {
			return nil
		}
		found = true
		r, err = decodeStored([]byte(key), v)
		return err
	})
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		err = ErrClosed
	}
	return r, found, err
}

// Write stores r in partition p unless the key already holds a version at
// least as new, and returns the version the key holds afterwards: r's when
// it was stored, the newer one otherwise. It returns once r is on disk.
// The store keeps r.Value: the caller must not modify it afterwards.
func (s *Store) Write(p int, r Record) (Version, error) {
	held := make([]Version, 1)
	_, err := s.write([]Entry{{Partition: p, Record: r}}, held)
	return held[0], err
}

// Merge stores each entry whose version is newer than the stored one and
// returns how many it stored. It returns once they are on disk. The store
// keeps the entries' values: the caller must not modify them afterwards.
func (s *Store) Merge(entries []Entry) (int, error) {
	if len(entries) == 0 {
		return 0, nil
	}
	return s.write(entries, nil)
}

// write logs the entries newer than what their keys hold, enters them
// among the pending records, and returns how many once the log is fsynced.
// If held is not nil, it receives the version each key holds afterwards.
func (s *Store) write(entries []Entry, held []Version) (int, error) {
	s.mu.Lock()
	for !s.closed && s.err == nil && len(s.pending) >= maxPending {
		s.kick()
		s.roomy.Wait()
	}
	switch {
	case s.closed:
		s.mu.Unlock()
		return 0, ErrClosed
	case s.err != nil:
		err := s.err
		s.mu.Unlock()
		return 0, err
	}
	newer, err := s.newer(entries, held)
	if err != nil || len(newer) == 0 {
		s.mu.Unlock()
		return 0, err
	}
	var lsn uint64
	var buf []byte
	for start := 0; start < len(newer); {
		end, size := start, 0
		for end < len(newer) && (end == start || size+entrySize(newer[end]) <= maxEntryBytes) {
			size += entrySize(newer[end])
			end++
		}
		if cap(buf) < size+16 {
			buf = make([]byte, 0, size+16)
		}
		buf = appendWrites(buf[:0], newer[start:end])
		if lsn, err = s.log.append(buf); err != nil {
			s.err = err
			s.mu.Unlock()
			return 0, err
		}
		for _, e := range newer[start:end] {
			s.pending[pkey{e.Partition, e.Key}] = &pendingRecord{rec: e.Record, lsn: lsn}
		}
		start = end
	}
	if len(s.pending) == len(newer) || len(s.pending) >= maxPending/2 {
		s.kick()
	}
	s.mu.Unlock()
	if err := s.log.sync(lsn); err != nil {
		return 0, err
	}
	return len(newer), nil
}

// newer returns the entries whose versions are newer than what their keys
// hold (the pending records first, then bbolt), the later of two entries
// of one key counting the earlier. With held, it records the version each
// key holds once the newer entries are stored. s.mu must be held.
func (s *Store) newer(entries []Entry, held []Version) ([]*Entry, error) {
	var tx *bolt.Tx
	defer func() {
		if tx != nil {
			_ = tx.Rollback()
		}
	}()
	var taken map[pkey]*Entry // the newer entries, when keys may repeat
	if len(entries) > 1 {
		taken = make(map[pkey]*Entry, len(entries))
	}
	newer := make([]*Entry, 0, len(entries))
	var name [24]byte
	for i := range entries {
		e := &entries[i]
		k := pkey{e.Partition, e.Key}
		var cur Version
		if t := taken[k]; t != nil {
			cur = t.Version
		} else if pr := s.pending[k]; pr != nil {
			cur = pr.rec.Version
		} else {
			if tx == nil {
				var err error
				if tx, err = s.db.Begin(false); err != nil {
					if errors.Is(err, berrors.ErrDatabaseNotOpen) {
						err = ErrClosed
					}
					return nil, err
				}
			}
			if b := tx.Bucket(bucketName(name[:0], e.Partition)); b != nil {
				if v := b.Get([]byte(e.Key)); v != nil {
					var err error
					if cur, err = storedVersion(v); err != nil {
						return nil, fmt.Errorf("key %q: %w", e.Key, err)
					}
				}
			}
		}
		if cur.Less(e.Version) {
			cur = e.Version
			if e.Deleted {
				e.Value = nil
			}
			if taken != nil {
				if t := taken[k]; t != nil {
					// Replaced within this write: log only the newest.
					for j, n := range newer {
						if n == t {
							newer = append(newer[:j], newer[j+1:]...)
							break
						}
					}
				}
				taken[k] = e
			}
			newer = append(newer, e)
		}
		if held != nil {
			held[i] = cur
		}
	}
	return newer, nil
}

// DropIf deletes partition p and its records if cond, called between the
// writes submitted before and after, returns true. It reports whether it
// dropped the partition. cond must be quick and must not call the Store.
func (s *Store) DropIf(p int, cond func() bool) (bool, error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return false, ErrClosed
	case s.err != nil:
		return false, s.err
	case cond != nil && !cond():
		return false, nil
	}
	var name [24]byte
	inFile := false
	if err := s.db.View(func(tx *bolt.Tx) error {
		inFile = tx.Bucket(bucketName(name[:0], p)) != nil
		return nil
	}); err != nil {
		return false, err
	}
	dropped := inFile
	for k := range s.pending {
		if k.partition == p {
			delete(s.pending, k)
			dropped = true
		}
	}
	if !dropped {
		return false, nil
	}
	s.roomy.Broadcast()
	// The drop is logged, so that replaying the log after a crash drops
	// the partition's earlier records again rather than bring them back.
	lsn, err := s.log.append(appendDrop(nil, p))
	if err == nil {
		err = s.log.sync(lsn)
	}
	if err != nil {
		s.err = err
		return false, err
	}
	if !inFile {
		return true, nil
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.DeleteBucket(bucketName(name[:0], p))
	})
	if err != nil {
		s.err = fmt.Errorf("store: drop partition %d: %w", p, err)
		return false, s.err
	}
	return true, nil
}

// Scan returns up to limit records of partition p, tombstones included, in
// key order starting after the key after ("" for the first). An empty
// result means the partition has no more records. It first applies the
// writes logged so far to bbolt, so that it returns every write that
// returned before it; each Scan is then one short read transaction, so a
// long copy never holds the file.
func (s *Store) Scan(p int, after string, limit int) ([]Record, error) {
	if err := s.applyRound(); err != nil {
		return nil, err
	}
	var out []Record
	var name [24]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName(name[:0], p))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		k, v := c.First()
		if after != "" {
			k, v = c.Seek([]byte(after))
			if k != nil && string(k) == after {
				k, v = c.Next()
			}
		}
		for ; k != nil && len(out) < limit; k, v = c.Next() {
			r, err := decodeStored(k, v)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		err = ErrClosed
	}
	return out, err
}

// merge stores r in b unless b holds a version of r's key at least as new,
// which it returns.
func merge(b *bolt.Bucket, r *Record) (stored bool, cur Version, err error) {
	if v := b.Get([]byte(r.Key)); v != nil {
		if cur, err = storedVersion(v); err != nil {
			return false, cur, fmt.Errorf("key %q: %w", r.Key, err)
		}
		if !cur.Less(r.Version) {
			return false, cur, nil
		}
	}
	return true, r.Version, b.Put([]byte(r.Key), appendStored(make([]byte, 0, headerLen+len(r.Value)), r))
}

// bucketName appends the bucket name of partition p, "partition-<p>" as in
// the cluster map, to dst.
func bucketName(dst []byte, p int) []byte {
	return strconv.AppendInt(append(dst, "partition-"...), int64(p), 10)
}
