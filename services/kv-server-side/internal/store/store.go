// Package store keeps a node's key-value records durably in one bbolt file,
// one bucket per partition, every key with a Version and every delete kept
// as a tombstone. A partition can therefore be scanned and sent to another
// node, which merges it by version: the newer write of a key wins, whatever
// order writes, copies and replicas arrive in.
//
// Writes are committed in groups: concurrent writers share one bbolt
// transaction and one fsync, and a write returns once it is on disk.
package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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

// maxGroup caps the writes committed in one transaction.
const maxGroup = 512

// lingerFor is how long the writer waits for more writes before a commit,
// when the previous commit had several.
const lingerFor = 200 * time.Microsecond

// busyWithin: a write that arrives within this time of the last commit's
// end finds the store busy.
const busyWithin = time.Millisecond

// The meta bucket holds the greatest Seq stored (8 bytes, big endian).
const (
	metaBucket = "meta"
	metaMaxSeq = "max-seq"
)

// Store is a node's record store. Its methods are safe for concurrent use.
type Store struct {
	db      *bolt.DB
	hadData bool
	// maxSeq is the greatest Seq stored; only the writer touches it
	// after Open.
	maxSeq uint64

	mu     sync.RWMutex // guards closed against sends on ops
	closed bool
	ops    chan *op
	stop   chan struct{}
	done   chan struct{}
}

// Options tune a Store.
type Options struct {
	// NoSync skips the fsync of each commit: a write returns once it is in
	// the operating system's page cache. It survives a crash of the
	// process but not of the machine. Replication to other machines can
	// make up for that; a single node cannot.
	NoSync bool
}

// Open opens (creating if needed) the store file at path and starts its
// writer. It fails after a second if another process holds the file.
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
	s := &Store{
		db:   db,
		ops:  make(chan *op, maxGroup),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if string(name) == metaBucket {
				if v := b.Get([]byte(metaMaxSeq)); len(v) == 8 {
					s.maxSeq = binary.BigEndian.Uint64(v)
				}
				return nil
			}
			if k, _ := b.Cursor().First(); k != nil {
				s.hadData = true
			}
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: read %s: %w", path, err)
	}
	go s.run()
	return s, nil
}

// MaxSeq returns the greatest Version.Seq stored when the file was opened,
// so that a node that numbers writes with a clock never reuses a number
// after a restart, even if its clock stepped back.
func (s *Store) MaxSeq() uint64 { return s.maxSeq }

// HadData reports whether the file held records when it was opened: the
// node is restarting rather than starting afresh.
func (s *Store) HadData() bool { return s.hadData }

// Close commits the writes already submitted, stops the writer and closes
// the file. Later calls return ErrClosed.
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
	return s.db.Close()
}

// Get returns key's record in partition p, tombstones included; found is
// false when the key was never written (or its partition was dropped).
func (s *Store) Get(p int, key string) (r Record, found bool, err error) {
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
func (s *Store) Write(p int, r Record) (Version, error) {
	o := getOp()
	o.kind, o.partition, o.record = opWrite, p, r
	err := s.submit(o)
	v := o.version
	putOp(o)
	return v, err
}

// Merge stores each entry whose version is newer than the stored one and
// returns how many it stored. It returns once they are on disk.
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

// run is the writer: it commits the writes waiting at each moment in one
// transaction, so concurrent writers share an fsync without any added delay.
func (s *Store) run() {
	defer close(s.done)
	group := make([]*op, 0, maxGroup)
	last := 0 // size of the previous group
	var lastEnd time.Time
	useful := true // whether the last wait for more writes got any
	for {
		var first *op
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
		group = append(group[:0], first)
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
			select {
			case o := <-s.ops:
				group = append(group, o)
				continue
			default:
			}
			if linger == nil || (last > 1 && len(group) >= last) {
				break
			}
			select {
			case o := <-s.ops:
				group = append(group, o)
			case <-linger:
				break fill
			}
		}
		if linger != nil {
			useful = len(group) > 1
		}
		last = len(group)
		s.commit(group)
		lastEnd = time.Now()
	}
}

// commit applies group in one transaction and wakes its writers. A write
// refused for its own reason (a stale epoch) does not affect the others; a
// failed transaction fails them all.
func (s *Store) commit(group []*op) {
	maxSeq := s.maxSeq
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, o := range group {
			o.err = nil
			if err := o.apply(tx); err != nil {
				return err
			}
			maxSeq = max(maxSeq, o.maxSeq())
		}
		if maxSeq == s.maxSeq {
			return nil
		}
		b, err := tx.CreateBucketIfNotExists([]byte(metaBucket))
		if err != nil {
			return err
		}
		return b.Put([]byte(metaMaxSeq), binary.BigEndian.AppendUint64(nil, maxSeq))
	})
	if err == nil {
		s.maxSeq = maxSeq
	}
	for _, o := range group {
		if err != nil {
			o.err = fmt.Errorf("store: commit: %w", err)
		}
		o.done <- struct{}{}
	}
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

	version Version
	applied int
	err     error
	done    chan struct{}
}

var opPool = sync.Pool{New: func() any { return &op{done: make(chan struct{}, 1)} }}

func getOp() *op { return opPool.Get().(*op) }

func putOp(o *op) {
	done := o.done
	*o = op{done: done}
	opPool.Put(o)
}

// maxSeq returns the greatest Seq o writes.
func (o *op) maxSeq() uint64 {
	m := o.record.Version.Seq
	for i := range o.entries {
		m = max(m, o.entries[i].Version.Seq)
	}
	return m
}

// apply performs o inside tx. A returned error aborts the transaction; a
// refusal of o alone is left in o.err. Every stored value is a new slice:
// bbolt keeps a reference to it until the transaction ends.
func (o *op) apply(tx *bolt.Tx) error {
	var name [24]byte
	switch o.kind {
	case opWrite:
		b, err := tx.CreateBucketIfNotExists(bucketName(name[:0], o.partition))
		if err != nil {
			return err
		}
		stored, cur, err := merge(b, &o.record)
		if err != nil {
			return err
		}
		if stored {
			o.version = o.record.Version
			o.applied = 1
		} else {
			o.version = cur
		}
		return nil
	case opMerge:
		for i := range o.entries {
			e := &o.entries[i]
			b, err := tx.CreateBucketIfNotExists(bucketName(name[:0], e.Partition))
			if err != nil {
				return err
			}
			stored, _, err := merge(b, &e.Record)
			if err != nil {
				return err
			}
			if stored {
				o.applied++
			}
		}
		return nil
	case opDrop:
		if o.cond != nil && !o.cond() {
			return nil
		}
		err := tx.DeleteBucket(bucketName(name[:0], o.partition))
		if errors.Is(err, berrors.ErrBucketNotFound) {
			return nil
		}
		if err == nil {
			o.applied = 1
		}
		return err
	}
	return fmt.Errorf("store: unknown write kind %d", o.kind)
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
