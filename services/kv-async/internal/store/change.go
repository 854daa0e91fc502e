package store

import (
	"fmt"
	"time"

	kit "clusterkit.dev/services/kit/store"
)

// Change is one atomic change being made (see Store.Change). Its reads see
// the store as every earlier change left it, and this change's own
// writes. It is valid only during the function given to Change.
type Change struct {
	s  *Store
	tx *kit.Tx

	// This change's own writes, made visible to its reads.
	recs    map[pkey]header
	cursors map[pkey]uint64 // by partition and cursorKey
	fences  map[int]uint64
	moves   []move // the index's changes, in order
	local   uint64 // the last position handed out
}

// move is a record put at a new position: the index's change.
type move struct {
	p         int
	key       string
	pos, prev uint64
	at        int64
}

// pkey names a key (or a cursor) in a partition.
type pkey struct {
	p   int
	key string
}

// Change runs fn, which reads the store and makes changes through c, as
// one atomic change: if fn fails, nothing changes and Change returns its
// error. Changes run one at a time, in the order they are numbered; fn
// must be quick. Change returns once the change is durable, or as the
// SyncWindow allows; a change that writes is refused with ErrDiskFull,
// changing nothing, while the disk is nearly full.
func (s *Store) Change(fn func(c *Change) error) error {
	err := s.kv.Update(func(tx *kit.Tx) error {
		c := Change{s: s, tx: tx, local: s.local}
		if err := fn(&c); err != nil {
			return err
		}
		return c.finish()
	})
	if err != nil {
		return fmt.Errorf("kv-async: store: %w", err)
	}
	if s.onChange != nil {
		s.onChange()
	}
	return nil
}

// finish raises the stored bound of the positions if this change passed
// it, marks the update with the last position handed out, and has the
// index follow the records' moves once the update is applied.
func (c *Change) finish() error {
	if c.local == c.s.local {
		return nil
	}
	if c.local > c.s.bound {
		bound := c.local + positionSlack
		if err := c.tx.SetMeta(metaLocal, u64(bound)); err != nil {
			return err
		}
		// Kept once applied: positions up to a bound that a failed
		// update did not store could be handed out again after a
		// restart.
		s := c.s
		c.tx.OnApplied(func() { s.bound = bound })
	}
	c.tx.Mark(c.local)
	moves, x := c.moves, c.s.index
	c.tx.OnApplied(func() {
		for _, m := range moves {
			x.move(m.p, m.key, m.pos, m.at, m.prev)
		}
	})
	// Positions handed out by an update that then fails are skipped:
	// harmless, as positions need only grow.
	c.s.local = c.local
	return nil
}

// header returns the header of key's current record in partition p.
func (c *Change) header(p int, key string) (header, bool, error) {
	if h, ok := c.recs[pkey{p, key}]; ok {
		return h, true, nil
	}
	v, found, err := c.tx.Get(p, dataKey(key))
	if err != nil || !found {
		return header{}, false, err
	}
	h, err := decodeHeader(v)
	if err != nil {
		return header{}, false, fmt.Errorf("partition %d key %q: %w", p, key, err)
	}
	return h, true, nil
}

// put stores rec in partition p at the next position, which the key's
// index entry moves to from prev (0: none).
func (c *Change) put(p int, rec Record, prev uint64, now time.Time) (uint64, error) {
	c.local++
	local := c.local
	st := stored{Record: rec, local: local}
	if err := c.tx.Set(p, dataKey(rec.Key), st.encode()); err != nil {
		return 0, err
	}
	if c.recs == nil {
		c.recs = map[pkey]header{}
	}
	c.recs[pkey{p, rec.Key}] = header{version: rec.Version, deleted: rec.Deleted, time: rec.Time, local: local}
	c.moves = append(c.moves, move{p: p, key: rec.Key, pos: local, prev: prev, at: now.UnixMilli()})
	return local, nil
}

// Write stores a write accepted by the primary of partition p: a value,
// or with deleted a tombstone, of Version{epoch, next position}. A delete
// of a key that has no live value writes nothing and returns existed
// false.
func (c *Change) Write(p int, key string, value []byte, deleted bool, epoch uint64) (rec Record, existed bool, err error) {
	h, found, err := c.header(p, key)
	if err != nil {
		return Record{}, false, err
	}
	existed = found && !h.deleted
	if deleted && !existed {
		return Record{}, false, nil
	}
	now := time.Now()
	rec = Record{Key: key, Value: value, Version: Version{Epoch: epoch, Seq: c.local + 1}, Deleted: deleted, Time: now.UnixMilli()}
	if deleted {
		rec.Value = nil
	}
	if _, err := c.put(p, rec, h.local, now); err != nil {
		return Record{}, false, err
	}
	return rec, existed, nil
}

// Merge stores rec, a replicated or copied record, if it is newer than
// what partition p holds for its key, and reports whether it did. So
// applying a record twice, or an older one after a newer one, changes
// nothing.
func (c *Change) Merge(p int, rec Record) (bool, error) {
	h, found, err := c.header(p, rec.Key)
	if err != nil {
		return false, err
	}
	if found && !rec.Version.Newer(h.version) {
		return false, nil
	}
	if _, err := c.put(p, rec, h.local, time.Now()); err != nil {
		return false, err
	}
	return true, nil
}

// Cursor returns partition p's cursor for (node, inc), and whether the
// partition has one (a cursor at 0 still records that node as a source).
func (c *Change) Cursor(p int, node string, inc uint64) (uint64, bool, error) {
	ck := cursorKey(node, inc)
	if seq, ok := c.cursors[pkey{p, string(ck)}]; ok {
		return seq, true, nil
	}
	v, found, err := c.tx.Get(p, ck)
	if err != nil || !found {
		return 0, false, err
	}
	seq, ok := parseU64(v)
	if !ok {
		return 0, false, fmt.Errorf("partition %d cursor of %s: %w", p, node, ErrCorrupt)
	}
	return seq, true, nil
}

// Advance raises partition p's cursor cur.Node, cur.Inc to cur.Seq,
// creating it if needed. A cursor of no node is ignored.
func (c *Change) Advance(p int, cur Cursor) error {
	seq, ok, err := c.Cursor(p, cur.Node, cur.Inc)
	if err != nil || cur.Node == "" || (ok && cur.Seq <= seq) {
		return err
	}
	ck := cursorKey(cur.Node, cur.Inc)
	if err := c.tx.Set(p, ck, u64(cur.Seq)); err != nil {
		return err
	}
	if c.cursors == nil {
		c.cursors = map[pkey]uint64{}
	}
	c.cursors[pkey{p, string(ck)}] = cur.Seq
	return nil
}

// Fence returns the highest epoch partition p accepted a batch from.
func (c *Change) Fence(p int) (uint64, error) {
	if e, ok := c.fences[p]; ok {
		return e, nil
	}
	v, found, err := c.tx.Get(p, keyFence)
	if err != nil || !found {
		return 0, err
	}
	e, ok := parseU64(v)
	if !ok {
		return 0, fmt.Errorf("partition %d fence: %w", p, ErrCorrupt)
	}
	return e, nil
}

// RaiseFence raises partition p's fence to epoch.
func (c *Change) RaiseFence(p int, epoch uint64) error {
	cur, err := c.Fence(p)
	if err != nil || epoch <= cur {
		return err
	}
	if err := c.tx.Set(p, keyFence, u64(epoch)); err != nil {
		return err
	}
	if c.fences == nil {
		c.fences = map[int]uint64{}
	}
	c.fences[p] = epoch
	return nil
}

// Write stores one write accepted by the primary of partition p, in a
// change of its own; see WriteBatch.
func (s *Store) Write(p int, key string, value []byte, deleted bool, check func() (uint64, error)) (rec Record, existed bool, err error) {
	w := []BatchWrite{{Partition: p, Key: key, Value: value, Deleted: deleted, Check: check}}
	if err := s.WriteBatch(w); err != nil {
		return Record{}, false, err
	}
	return w[0].Record, w[0].Existed, w[0].Err
}

// BatchWrite is one write of WriteBatch: its input and, once WriteBatch
// returns, its outcome.
type BatchWrite struct {
	Partition int
	Key       string
	Value     []byte
	Deleted   bool
	// Check runs inside the change, after every change made before it:
	// it returns the partition's epoch if this node may accept the write,
	// or an error that fails it.
	Check func() (uint64, error)

	Record  Record
	Existed bool
	Err     error // from Check
}

// WriteBatch stores writes accepted by a primary, in order, as one
// change: each write's Check runs after the writes before it, and a write
// whose Check fails is skipped (its Err set) without failing the others.
// It returns an error, and stores nothing, only if the batch as a whole
// cannot be stored.
func (s *Store) WriteBatch(writes []BatchWrite) error {
	return s.Change(func(c *Change) error {
		for i := range writes {
			w := &writes[i]
			epoch, err := w.Check()
			if err != nil {
				w.Err = err
				continue
			}
			if w.Record, w.Existed, err = c.Write(w.Partition, w.Key, w.Value, w.Deleted, epoch); err != nil {
				return err
			}
		}
		return nil
	})
}
