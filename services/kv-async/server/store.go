package server

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrClosed is returned by a closed Store.
var ErrClosed = errors.New("kv-async: store closed")

// Store keeps the node's data in one bbolt file. Each partition is a
// top-level bucket named like the partition ("partition-7"), so a partition
// can be streamed or dropped on its own. It holds:
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
//
// Writes go through a single committer goroutine that commits every
// write queued while the previous commit was running in one transaction
// (group commit): one commit, and its two fsyncs, serves many concurrent
// writers, and a lone writer never waits for company.
type Store struct {
	db  *bolt.DB
	inc uint64

	ops       chan *op
	quit      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
	// pending counts the updates handed to update and not yet received by
	// the committer, which waits briefly for them so that they share its
	// commit: a commit costs two fsyncs whatever its size.
	pending atomic.Int64

	// observeCommit, if set, is told the size and duration of each commit.
	observeCommit func(ops int, d time.Duration)
}

var (
	bucketMeta    = []byte("meta")
	bucketData    = []byte("data")
	bucketIndex   = []byte("index")
	bucketCursors = []byte("cursors")
	keyIncarn     = []byte("incarnation")
	keyFence      = []byte("fence")
)

const partitionPrefix = "partition-"

// maxOpsPerCommit bounds the writes grouped into one transaction.
const maxOpsPerCommit = 1024

// maxLinger bounds how long the committer waits for updates on their way
// to it (see Store.pending); it never waits when none is.
const maxLinger = 2 * time.Millisecond

// OpenStore opens or creates the store file kv.db in dir.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	path := filepath.Join(dir, "kv.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:        2 * time.Second, // another process holds the file
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := &Store{db: db, ops: make(chan *op), quit: make(chan struct{}), done: make(chan struct{})}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
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
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init %s: %w", path, err)
	}
	go s.commitLoop()
	return s, nil
}

// Incarnation identifies this store file (see Store).
func (s *Store) Incarnation() uint64 { return s.inc }

// Close waits for the commit in progress, then closes the file. Updates
// after Close fail with ErrClosed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.quit)
		<-s.done
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

// op is one queued write transaction body and its result.
type op struct {
	fn   func(tx *bolt.Tx) error
	done chan error
}

// abortError makes the committer roll back the shared transaction: the op
// failed after writing. The other ops are then retried one by one.
type abortError struct{ err error }

func (e abortError) Error() string { return e.err.Error() }
func (e abortError) Unwrap() error { return e.err }

// update runs fn in a write transaction, possibly shared with other
// updates. fn must either return an error before writing anything, which
// fails only its own update, or wrap the error in abortError.
func (s *Store) update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	o := &op{fn: fn, done: make(chan error, 1)}
	s.pending.Add(1)
	select {
	case s.ops <- o:
	case <-s.quit:
		s.pending.Add(-1)
		return ErrClosed
	case <-ctx.Done():
		s.pending.Add(-1)
		return ctx.Err()
	}
	// Once queued the op is committed promptly; wait for its result.
	return <-o.done
}

// view runs fn in a read transaction.
func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	select {
	case <-s.quit:
		return ErrClosed
	default:
	}
	return s.db.View(fn)
}

func (s *Store) commitLoop() {
	defer close(s.done)
	batch := make([]*op, 0, maxOpsPerCommit)
	for {
		select {
		case <-s.quit:
			return
		case o := <-s.ops:
			s.pending.Add(-1)
			batch = append(batch[:0], o)
		}
		// Take every update already queued, and wait a little for those
		// on their way.
		var linger <-chan time.Time
	collect:
		for len(batch) < maxOpsPerCommit {
			select {
			case o := <-s.ops:
				s.pending.Add(-1)
				batch = append(batch, o)
				continue
			default:
			}
			if s.pending.Load() == 0 {
				break
			}
			if linger == nil {
				linger = time.After(maxLinger)
			}
			select {
			case o := <-s.ops:
				s.pending.Add(-1)
				batch = append(batch, o)
			case <-linger:
				break collect
			}
		}
		s.commit(batch)
	}
}

func (s *Store) commit(batch []*op) {
	start := time.Now()
	errs := make([]error, len(batch))
	err := s.db.Update(func(tx *bolt.Tx) error {
		for i, o := range batch {
			errs[i] = o.fn(tx)
			var ae abortError
			if errors.As(errs[i], &ae) {
				return ae
			}
		}
		return nil
	})
	var ae abortError
	switch {
	case errors.As(err, &ae):
		for i, o := range batch {
			errs[i] = s.db.Update(o.fn)
		}
	case err != nil:
		for i := range errs {
			errs[i] = err
		}
	}
	if s.observeCommit != nil {
		s.observeCommit(len(batch), time.Since(start))
	}
	for i, o := range batch {
		o.done <- errs[i]
	}
}

// partitionName is the name of partition p's bucket.
func partitionName(p int) []byte { return []byte(partitionPrefix + strconv.Itoa(p)) }

// Partitions lists the partitions the store holds data for.
func (s *Store) Partitions() ([]int, error) {
	var out []int
	err := s.view(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			if n, ok := strings.CutPrefix(string(name), partitionPrefix); ok {
				if p, err := strconv.Atoi(n); err == nil {
					out = append(out, p)
				}
			}
			return nil
		})
	})
	return out, err
}

// DropPartition deletes partition p's bucket, if any.
func (s *Store) DropPartition(ctx context.Context, p int) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		err := tx.DeleteBucket(partitionName(p))
		if errors.Is(err, bolterrors.ErrBucketNotFound) {
			return nil
		}
		return err
	})
}

// pbucket is one partition's buckets inside a transaction.
type pbucket struct {
	tx                   *bolt.Tx
	b                    *bolt.Bucket
	data, index, cursors *bolt.Bucket
}

// partition returns partition p's buckets, or nil when the store has no
// data for p and create is false (or the transaction is read-only).
func partition(tx *bolt.Tx, p int, create bool) (*pbucket, error) {
	name := partitionName(p)
	b := tx.Bucket(name)
	if b == nil {
		if !create || !tx.Writable() {
			return nil, nil
		}
		var err error
		if b, err = tx.CreateBucket(name); err != nil {
			return nil, err
		}
		for _, sub := range [][]byte{bucketData, bucketIndex, bucketCursors} {
			if _, err := b.CreateBucket(sub); err != nil {
				return nil, err
			}
		}
	}
	pb := &pbucket{tx: tx, b: b, data: b.Bucket(bucketData), index: b.Bucket(bucketIndex), cursors: b.Bucket(bucketCursors)}
	if pb.data == nil || pb.index == nil || pb.cursors == nil {
		return nil, fmt.Errorf("partition bucket %s: %w", name, errCorrupt)
	}
	return pb, nil
}

// get returns key's stored record.
func (pb *pbucket) get(key string) (stored, bool, error) {
	b := pb.data.Get([]byte(key))
	if b == nil {
		return stored{}, false, nil
	}
	s, err := decodeStored(key, b)
	return s, err == nil, err
}

// nextLocal draws the next local sequence number of the store.
func nextLocal(tx *bolt.Tx) (uint64, error) {
	return tx.Bucket(bucketMeta).NextSequence()
}

// put stores rec with local sequence number local, moving the key's index
// entry; prevLocal is the key's previous entry (0: none).
func (pb *pbucket) put(rec Record, local, prevLocal uint64, now time.Time) error {
	if prevLocal != 0 {
		if err := pb.index.Delete(u64(prevLocal)); err != nil {
			return abortError{err}
		}
	}
	entry := make([]byte, 8+len(rec.Key))
	binary.BigEndian.PutUint64(entry, uint64(now.UnixMilli()))
	copy(entry[8:], rec.Key)
	if err := pb.index.Put(u64(local), entry); err != nil {
		return abortError{err}
	}
	st := stored{Record: rec, local: local}
	if err := pb.data.Put([]byte(rec.Key), st.encode()); err != nil {
		return abortError{err}
	}
	return nil
}

// merge stores rec if it is newer than what the partition holds for its
// key, and reports whether it did. Replicated and migrated records go
// through merge, so applying one twice, or an older one after a newer one,
// changes nothing.
func (pb *pbucket) merge(rec Record, now time.Time) (bool, error) {
	var prevLocal uint64
	if b := pb.data.Get([]byte(rec.Key)); b != nil {
		h, err := decodeHeader(b)
		if err != nil {
			return false, abortError{fmt.Errorf("key %q: %w", rec.Key, err)}
		}
		if !rec.Version.Newer(h.version) {
			return false, nil
		}
		prevLocal = h.local
	}
	local, err := nextLocal(pb.tx)
	if err != nil {
		return false, abortError{err}
	}
	return true, pb.put(rec, local, prevLocal, now)
}

// head returns the partition's last local sequence number (0: empty).
func (pb *pbucket) head() uint64 {
	k, _ := pb.index.Cursor().Last()
	if len(k) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}

// Cursor is the fact "this node holds every record of Node's index (in
// its store incarnation Inc) up to Seq" for one partition.
type Cursor struct {
	Node string
	Inc  uint64
	Seq  uint64
}

// cursorKey is node ID + 0 + incarnation.
func cursorKey(node string, inc uint64) []byte {
	k := make([]byte, 0, len(node)+9)
	k = append(k, node...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, inc)
}

// cursor returns the partition's cursor for (node, inc), 0 if none.
func (pb *pbucket) cursor(node string, inc uint64) uint64 {
	b := pb.cursors.Get(cursorKey(node, inc))
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// advance raises the cursor of (node, inc) to seq.
func (pb *pbucket) advance(c Cursor) error {
	if c.Node == "" || c.Seq <= pb.cursor(c.Node, c.Inc) {
		return nil
	}
	if err := pb.cursors.Put(cursorKey(c.Node, c.Inc), u64(c.Seq)); err != nil {
		return abortError{err}
	}
	return nil
}

// allCursors lists the partition's cursors.
func (pb *pbucket) allCursors() []Cursor {
	var out []Cursor
	_ = pb.cursors.ForEach(func(k, v []byte) error {
		if len(k) < 9 || len(v) != 8 || k[len(k)-9] != 0 {
			return nil
		}
		out = append(out, Cursor{Node: string(k[:len(k)-9]), Inc: binary.BigEndian.Uint64(k[len(k)-8:]), Seq: binary.BigEndian.Uint64(v)})
		return nil
	})
	return out
}

// fence returns the highest epoch a replication batch was accepted from.
func (pb *pbucket) fence() uint64 {
	if b := pb.b.Get(keyFence); len(b) == 8 {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (pb *pbucket) raiseFence(epoch uint64) error {
	if epoch <= pb.fence() {
		return nil
	}
	if err := pb.b.Put(keyFence, u64(epoch)); err != nil {
		return abortError{err}
	}
	return nil
}

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

// Get returns key's record in partition p; found is false when the store
// has no record for key (a tombstone is returned, with Deleted set).
func (s *Store) Get(p int, key string) (rec Record, found bool, err error) {
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
// or with deleted a tombstone. check runs inside the transaction, after
// every write committed before it: it returns the partition's epoch if
// this node may accept the write, or an error that fails it. The record
// gets Version{epoch, next local sequence number}. A delete of a key that
// has no live value writes nothing and returns existed false. Write
// returns once the record is durable.
func (s *Store) Write(ctx context.Context, p int, key string, value []byte, deleted bool, check func() (uint64, error)) (rec Record, existed bool, err error) {
	err = s.update(ctx, func(tx *bolt.Tx) error {
		epoch, err := check()
		if err != nil {
			return err
		}
		pb, err := partition(tx, p, true)
		if err != nil {
			return err
		}
		var prevLocal uint64
		if b := pb.data.Get([]byte(key)); b != nil {
			h, err := decodeHeader(b)
			if err != nil {
				return fmt.Errorf("key %q: %w", key, err)
			}
			existed, prevLocal = !h.deleted, h.local
		} else {
			existed = false
		}
		if deleted && !existed {
			return nil
		}
		local, err := nextLocal(tx)
		if err != nil {
			return err
		}
		now := time.Now()
		rec = Record{Key: key, Value: value, Version: Version{Epoch: epoch, Seq: local}, Deleted: deleted, Time: now.UnixMilli()}
		if deleted {
			rec.Value = nil
		}
		return pb.put(rec, local, prevLocal, now)
	})
	return rec, existed, err
}
