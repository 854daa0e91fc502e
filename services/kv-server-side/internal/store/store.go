// Package store keeps a node's key-value records durably, one bbolt
// bucket per partition, every key with a Version and every delete kept as
// a tombstone. A partition can therefore be scanned and sent to another
// node, which merges it by version: the newer write of a key wins, whatever
// order writes, copies and replicas arrive in.
//
// A write is durable once it is in the store's write-ahead log (wal.go):
// one writer goroutine takes the writes waiting at each moment, appends
// them with one write and one fdatasync (group commit), and returns. An
// applier moves the log into the bbolt file in the background, many writes
// per transaction; until then reads find the writes in an in-memory table
// (memtable.go). bbolt records the last log entry it holds, so a restart
// replays exactly the entries after it.
package store

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Errors returned by Store.
var (
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("store: closed")
)

// maxGroup caps the writes committed together.
const maxGroup = 512

// lingerFor is how long the writer waits for more writes before a commit,
// when the previous commit had several.
const lingerFor = 100 * time.Microsecond

// busyWithin: a write that arrives within this time of the last commit's
// end finds the store busy.
const busyWithin = time.Millisecond

// The meta bucket holds the greatest Seq stored and the LSN of the last
// log entry applied (8 bytes each, big endian).
const (
	metaBucket  = "meta"
	metaMaxSeq  = "max-seq"
	metaApplied = "wal-applied"
)

// walDirSuffix names the log's directory after the bbolt file: kv.db-wal.
const walDirSuffix = "-wal"

// Store is a node's record store. Its methods are safe for concurrent use.
type Store struct {
	db      *bolt.DB
	wal     *wal
	mem     *memtable
	opts    Options
	hadData bool
	// maxSeq is the greatest Seq stored; only the writer touches it
	// after Open.
	maxSeq uint64

	// forgetMu orders the applier's forgetting of records against the
	// writer's look-ups: the writer holds it for reading while it
	// compares a group's records with the memtable and then bbolt, so a
	// record is never in neither.
	forgetMu sync.RWMutex
	// ckptMu makes checkpoints run one at a time; applied is the LSN of
	// the last log entry in bbolt.
	ckptMu  sync.Mutex
	applied uint64
	// failed is the sticky error of a failed checkpoint: the log is
	// intact, but nothing more is accepted.
	failed atomic.Pointer[error]

	// The writer's state.
	enc []byte
	own map[partKey]Version // the records of the group being staged

	mu     sync.RWMutex // guards closed against sends on ops
	closed bool
	isShut atomic.Bool
	ops    chan *op
	stop   chan struct{}
	done   chan struct{}

	kick      chan struct{}
	applyStop chan struct{}
	applyDone chan struct{}
}

type partKey struct {
	p   int
	key string
}

// Options tune a Store.
type Options struct {
	// NoSync skips the fsync of the log and of bbolt: a write returns
	// once it is in the operating system's page cache. It survives a
	// crash of the process but not of the machine. Replication to other
	// machines can make up for that; a single node cannot.
	NoSync bool
	// ApplyInterval is how often the applier moves the log into bbolt:
	// a bbolt transaction rewrites every page it touches, so the more
	// writes share it, the less each costs. Default 500ms.
	ApplyInterval time.Duration
	// ApplyRecords makes the applier run early once the memtable holds
	// this many records; at eight times as many, writes wait for it.
	// Default 16384.
	ApplyRecords int
}

func (o *Options) fillDefaults() {
	if o.ApplyInterval <= 0 {
		o.ApplyInterval = 500 * time.Millisecond
	}
	if o.ApplyRecords <= 0 {
		o.ApplyRecords = 16384
	}
}

// Open opens (creating if needed) the store file at path and its log (the
// directory path+"-wal"), replays the log entries bbolt lacks, and
// starts the writer and the applier. It fails after a second if another
// process holds the file.
func Open(path string, opts Options) (*Store, error) {
	opts.fillDefaults()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("store: create directory: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:        time.Second,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
		NoSync:         opts.NoSync,
		// Address space only: a remap waits for every reader.
		InitialMmapSize: 1 << 30,
	})
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s := &Store{
		db:        db,
		mem:       newMemtable(),
		opts:      opts,
		own:       map[partKey]Version{},
		ops:       make(chan *op, maxGroup),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		kick:      make(chan struct{}, 1),
		applyStop: make(chan struct{}),
		applyDone: make(chan struct{}),
	}
	if err := s.readMeta(); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: read %s: %w", path, err)
	}
	var replay []Entry
	var replayed uint64
	s.wal, err = openWAL(path+walDirSuffix, s.applied, opts.NoSync, func(lsn uint64, payload []byte) error {
		entries, err := decodeEntry(payload)
		if err != nil {
			return err
		}
		replay = append(replay, entries...)
		replayed = lsn
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	if replayed > s.applied {
		if err := s.applyToBolt(replay, replayed); err != nil {
			s.wal.close()
			db.Close()
			return nil, fmt.Errorf("store: replay the log into %s: %w", path, err)
		}
		if err := s.wal.removeThrough(replayed); err != nil {
			s.wal.close()
			db.Close()
			return nil, err
		}
	}
	if err := s.readMeta(); err != nil {
		s.wal.close()
		db.Close()
		return nil, fmt.Errorf("store: read %s: %w", path, err)
	}
	go s.run()
	go s.applyLoop()
	return s, nil
}

// readMeta reads the greatest Seq, the applied LSN, and whether any
// partition holds records.
func (s *Store) readMeta() error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if string(name) == metaBucket {
				if v := b.Get([]byte(metaMaxSeq)); len(v) == 8 {
					s.maxSeq = binary.BigEndian.Uint64(v)
				}
				if v := b.Get([]byte(metaApplied)); len(v) == 8 {
					s.applied = binary.BigEndian.Uint64(v)
				}
				return nil
			}
			if k, _ := b.Cursor().First(); k != nil {
				s.hadData = true
			}
			return nil
		})
	})
}

// MaxSeq returns the greatest Version.Seq stored when the file was opened,
// so that a node that numbers writes with a clock never reuses a number
// after a restart, even if its clock stepped back.
func (s *Store) MaxSeq() uint64 { return s.maxSeq }

// HadData reports whether the file held records when it was opened: the
// node is restarting rather than starting afresh.
func (s *Store) HadData() bool { return s.hadData }

// Close commits the writes already submitted, stops the writer and the
// applier, applies the log to bbolt and closes the files. Later calls
// return ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	close(s.applyStop)
	<-s.applyDone
	var errs []error
	if p := s.failed.Load(); p == nil {
		errs = append(errs, s.checkpoint())
	}
	s.isShut.Store(true)
	errs = append(errs, s.wal.close(), s.db.Close())
	return errors.Join(errs...)
}

// Get returns key's record in partition p, tombstones included; found is
// false when the key was never written (or its partition was dropped).
// The record's value must not be modified.
func (s *Store) Get(p int, key string) (r Record, found bool, err error) {
	if s.isShut.Load() {
		return Record{}, false, ErrClosed
	}
	// The memtable first: a record leaves it only once bbolt has it, so a
	// miss here is answered by a bbolt transaction begun after.
	if r, ok := s.mem.get(p, key); ok {
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
	o := getOp()
	o.kind, o.partition, o.record = opWrite, p, r
	err := s.submit(o)
	v := o.version
	putOp(o)
	return v, err
}

// Merge stores each entry whose version is newer than the stored one and
// returns how many it stored. It returns once they are on disk. The store
// keeps the entries' values: the caller must not modify them afterwards.
func (s *Store) Merge(entries []Entry) (int, error) {
	if len(entries) == 0 {
		return 0, nil
	}
	o := getOp()
	o.kind, o.entries = opMerge, entries
	err := s.submit(o)
	n := o.applied
	putOp(o)
	return n, err
}

// DropIf deletes partition p and its records if cond, called by the writer
// between the writes submitted before and after, returns true. It reports
// whether it dropped the partition. cond must be quick and must not call
// the Store.
func (s *Store) DropIf(p int, cond func() bool) (bool, error) {
	o := getOp()
	o.kind, o.partition, o.cond = opDrop, p, cond
	err := s.submit(o)
	dropped := o.applied > 0
	putOp(o)
	return dropped, err
}

// Scan returns up to limit records of partition p, tombstones included, in
// key order starting after the key after ("" for the first). An empty
// result means the partition has no more records. Each Scan is one short
// read transaction, so a long copy never holds the file.
func (s *Store) Scan(p int, after string, limit int) ([]Record, error) {
	if s.isShut.Load() {
		return nil, ErrClosed
	}
	// The memtable before bbolt, as in Get. Its records are the newest of
	// their keys.
	mem := s.mem.scan(p, after)
	var out []Record
	var name [24]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		var k, v []byte
		var c *bolt.Cursor
		if b := tx.Bucket(bucketName(name[:0], p)); b != nil {
			c = b.Cursor()
			k, v = c.First()
			if after != "" {
				k, v = c.Seek([]byte(after))
				if k != nil && string(k) == after {
					k, v = c.Next()
				}
			}
		}
		for len(out) < limit {
			switch {
			case len(mem) > 0 && (k == nil || mem[0].Key <= string(k)):
				if k != nil && mem[0].Key == string(k) {
					k, v = c.Next()
				}
				out = append(out, mem[0])
				mem = mem[1:]
			case k != nil:
				r, err := decodeStored(k, v)
				if err != nil {
					return err
				}
				out = append(out, r)
				k, v = c.Next()
			default:
				return nil
			}
		}
		return nil
	})
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		err = ErrClosed
	}
	return out, err
}

// submit hands o to the writer and waits until it is committed.
func (s *Store) submit(o *op) error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	s.ops <- o
	s.mu.RUnlock()
	<-o.done
	return o.err
}

// run is the writer: it commits the writes waiting at each moment
// together, so concurrent writers share a log append and an fsync. A drop
// is committed on its own.
func (s *Store) run() {
	defer close(s.done)
	group := make([]*op, 0, maxGroup)
	last := 0 // size of the previous group
	var lastEnd time.Time
	useful := true // whether the last wait for more writes got any
	var next *op   // a drop that ended the previous group
	for {
		first := next
		next = nil
		if first == nil {
			select {
			case first = <-s.ops:
			case <-s.stop:
				// Close has stopped new submissions; commit what is queued.
				for {
					select {
					case o := <-s.ops:
						s.commit(append(group[:0], o))
					default:
						return
					}
				}
			}
		}
		group = append(group[:0], first)
		if first.kind == opDrop {
			s.commit(group)
			continue
		}
		// Under load (the last commit had company, or ended a moment
		// ago and waiting helped before), wait a moment for more writes:
		// a commit costs about the same for one write or many. A lone
		// writer soon stops paying for the wait.
		var linger <-chan time.Time
		if last > 1 || (useful && time.Since(lastEnd) < busyWithin) {
			linger = time.After(lingerFor)
		}
	fill:
		for len(group) < maxGroup {
			var o *op
			select {
			case o = <-s.ops:
			default:
				if linger == nil || (last > 1 && len(group) >= last) {
					break fill
				}
				select {
				case o = <-s.ops:
				case <-linger:
					break fill
				}
			}
			if o.kind == opDrop {
				next = o
				break
			}
			group = append(group, o)
		}
		if linger != nil {
			useful = len(group) > 1
		}
		last = len(group)
		s.commit(group)
		lastEnd = time.Now()
	}
}

// commit stores group and wakes its writers: it compares each record with
// what the key holds, logs the newer ones with one append and one fsync,
// and only then shows them to reads. A write refused for its own reason
// (an older version) does not affect the others; a failed log write fails
// them all.
func (s *Store) commit(group []*op) {
	if group[0].kind == opDrop {
		o := group[0]
		o.err = s.drop(o)
		o.done <- struct{}{}
		return
	}
	err := s.err()
	if err == nil {
		err = s.stage(group)
	}
	if err == nil {
		err = s.wal.flush()
	}
	if err == nil {
		for _, o := range group {
			if len(o.stored) > 0 {
				s.mem.add(o.lsn, o.stored)
				s.maxSeq = max(s.maxSeq, o.maxSeq())
			}
		}
		if n := s.mem.size(); n >= s.opts.ApplyRecords*8 {
			// The applier is behind: apply here, so that the memtable
			// stays bounded.
			err = s.checkpoint()
		} else if n >= s.opts.ApplyRecords {
			select {
			case s.kick <- struct{}{}:
			default:
			}
		}
	}
	for _, o := range group {
		if err != nil {
			o.err = fmt.Errorf("store: commit: %w", err)
		}
		o.done <- struct{}{}
	}
}

// err returns the sticky error of a failed checkpoint.
func (s *Store) err() error {
	if p := s.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// stage decides what each op of group stores, in order, each seeing the
// ones before, and adds one log entry per op that stores anything.
func (s *Store) stage(group []*op) error {
	s.forgetMu.RLock()
	defer s.forgetMu.RUnlock()
	var tx *bolt.Tx
	defer func() {
		if tx != nil {
			_ = tx.Rollback()
		}
	}()
	clear(s.own)
	var name [24]byte
	// held returns the version key holds in partition p, if any.
	held := func(p int, key string) (Version, bool, error) {
		if v, ok := s.own[partKey{p, key}]; ok {
			return v, true, nil
		}
		if r, ok := s.mem.get(p, key); ok {
			return r.Version, true, nil
		}
		if tx == nil {
			var err error
			if tx, err = s.db.Begin(false); err != nil {
				return Version{}, false, err
			}
		}
		b := tx.Bucket(bucketName(name[:0], p))
		if b == nil {
			return Version{}, false, nil
		}
		v := b.Get([]byte(key))
		if v == nil {
			return Version{}, false, nil
		}
		cur, err := storedVersion(v)
		if err != nil {
			return Version{}, false, fmt.Errorf("key %q: %w", key, err)
		}
		return cur, true, nil
	}
	// accept adds r to o's records if it is newer than what key holds.
	accept := func(o *op, p int, r *Record) (bool, Version, error) {
		cur, found, err := held(p, r.Key)
		if err != nil {
			return false, cur, err
		}
		if found && !cur.Less(r.Version) {
			return false, cur, nil
		}
		s.own[partKey{p, r.Key}] = r.Version
		o.stored = append(o.stored, Entry{Partition: p, Record: *r})
		return true, r.Version, nil
	}
	for _, o := range group {
		o.err, o.stored, o.applied = nil, o.stored[:0], 0
		switch o.kind {
		case opWrite:
			stored, v, err := accept(o, o.partition, &o.record)
			if err != nil {
				return err
			}
			o.version = v
			if stored {
				o.applied = 1
			}
		case opMerge:
			for i := range o.entries {
				stored, _, err := accept(o, o.entries[i].Partition, &o.entries[i].Record)
				if err != nil {
					return err
				}
				if stored {
					o.applied++
				}
			}
		default:
			return fmt.Errorf("unknown write kind %d", o.kind)
		}
		if len(o.stored) > 0 {
			s.enc = appendEntry(s.enc[:0], o.stored)
			lsn, err := s.wal.add(s.enc)
			if err != nil {
				return err
			}
			o.lsn = lsn
		}
	}
	return nil
}

// drop deletes o's partition if its condition holds, once every earlier
// write is in bbolt.
func (s *Store) drop(o *op) error {
	if err := s.err(); err != nil {
		return err
	}
	if o.cond != nil && !o.cond() {
		return nil
	}
	if err := s.checkpoint(); err != nil {
		return fmt.Errorf("store: drop partition %d: %w", o.partition, err)
	}
	var name [24]byte
	err := s.db.Update(func(tx *bolt.Tx) error {
		err := tx.DeleteBucket(bucketName(name[:0], o.partition))
		if errors.Is(err, berrors.ErrBucketNotFound) {
			return nil
		}
		if err == nil {
			o.applied = 1
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("store: drop partition %d: %w", o.partition, err)
	}
	s.mem.drop(o.partition)
	return nil
}

// applyLoop is the applier: every ApplyInterval, or sooner when the
// memtable fills, it moves the log into bbolt.
func (s *Store) applyLoop() {
	defer close(s.applyDone)
	t := time.NewTicker(s.opts.ApplyInterval)
	defer t.Stop()
	for {
		select {
		case <-s.applyStop:
			return
		case <-t.C:
		case <-s.kick:
		}
		if s.err() != nil {
			continue
		}
		_ = s.checkpoint() // a failure is sticky: the next write reports it
	}
}

// checkpoint applies every record of the memtable to bbolt in one
// transaction, with the LSN of the last log entry it covers, then forgets
// them and deletes the log segments no longer needed. A failure is sticky.
func (s *Store) checkpoint() error {
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	entries, last := s.mem.snapshot()
	if last <= s.applied {
		return nil
	}
	if err := s.applyToBolt(entries, last); err != nil {
		err = fmt.Errorf("store: apply the log: %w", err)
		s.failed.CompareAndSwap(nil, &err)
		return err
	}
	s.forgetMu.Lock()
	s.mem.forget(last)
	s.forgetMu.Unlock()
	if err := s.wal.removeThrough(last); err != nil {
		s.failed.CompareAndSwap(nil, &err)
		return err
	}
	return nil
}

// applyToBolt merges entries into bbolt in one transaction that also
// records lsn as applied and the greatest Seq. The caller holds ckptMu or
// has not started the applier.
func (s *Store) applyToBolt(entries []Entry, lsn uint64) error {
	// Key order makes bbolt's page writes sequential.
	slices.SortFunc(entries, func(a, b Entry) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), strings.Compare(a.Key, b.Key))
	})
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists([]byte(metaBucket))
		if err != nil {
			return err
		}
		var maxSeq uint64
		if v := meta.Get([]byte(metaMaxSeq)); len(v) == 8 {
			maxSeq = binary.BigEndian.Uint64(v)
		}
		var name [24]byte
		var b *bolt.Bucket
		bp := -1
		for i := range entries {
			e := &entries[i]
			if b == nil || e.Partition != bp {
				if b, err = tx.CreateBucketIfNotExists(bucketName(name[:0], e.Partition)); err != nil {
					return err
				}
				bp = e.Partition
			}
			if _, _, err := merge(b, &e.Record); err != nil {
				return err
			}
			maxSeq = max(maxSeq, e.Version.Seq)
		}
		if err := meta.Put([]byte(metaMaxSeq), binary.BigEndian.AppendUint64(nil, maxSeq)); err != nil {
			return err
		}
		return meta.Put([]byte(metaApplied), binary.BigEndian.AppendUint64(nil, lsn))
	})
	if err == nil {
		s.applied = lsn
	}
	return err
}

type opKind uint8

const (
	opWrite opKind = iota + 1
	opMerge
	opDrop
)

// op is one submitted write and, once done is signalled, its result.
type op struct {
	kind      opKind
	partition int
	record    Record
	entries   []Entry
	cond      func() bool

	// Staged by the writer: the records o stores and their log entry.
	stored []Entry
	lsn    uint64

	version Version
	applied int
	err     error
	done    chan struct{}
}

var opPool = sync.Pool{New: func() any { return &op{done: make(chan struct{}, 1)} }}

func getOp() *op { return opPool.Get().(*op) }

func putOp(o *op) {
	done, stored := o.done, o.stored
	clear(stored)
	*o = op{done: done, stored: stored[:0]}
	opPool.Put(o)
}

// maxSeq returns the greatest Seq o stores.
func (o *op) maxSeq() uint64 {
	var m uint64
	for i := range o.stored {
		m = max(m, o.stored[i].Version.Seq)
	}
	return m
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
