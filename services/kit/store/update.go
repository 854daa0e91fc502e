package store

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Tx is one Update's view of the store and its writes. It is valid only
// during the Update's function.
type Tx struct {
	s       *Store
	b       *pebble.Batch
	keys    []string // stored keys written, for the flights and the cache
	values  [][]byte // what each key now holds (copies)
	deleted []bool   // whether each key was deleted
	drops   []int
	writes  bool     // some Set: the update needs room
	mark    uint64   // see Mark
	applied []func() // see OnApplied
}

// Get returns the value of key in partition p as the Updates before this
// one left it (this one's own writes are not seen). The value is a copy.
func (tx *Tx) Get(p int, key []byte) (value []byte, found bool, err error) {
	if err := checkPartition(p); err != nil {
		return nil, false, err
	}
	return tx.s.get(partitionKey(p, key))
}

// Any reports whether partition p holds a key, as the Updates before this
// one left it.
func (tx *Tx) Any(p int) (bool, error) {
	if err := checkPartition(p); err != nil {
		return false, err
	}
	lower, upper := partitionBounds(p)
	it, err := tx.s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return false, fmt.Errorf("store: read partition %d: %w", p, err)
	}
	found := it.First()
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return false, fmt.Errorf("store: read partition %d: %w", p, err)
	}
	return found, nil
}

// Meta returns the metadata entry name as the Updates before this one left
// it.
func (tx *Tx) Meta(name string) (value []byte, found bool, err error) {
	return tx.s.get(metaKey(name))
}

// Set writes value under key in partition p. The store copies both.
func (tx *Tx) Set(p int, key, value []byte) error {
	if err := checkPartition(p); err != nil {
		return err
	}
	// Before Pebble holds it, the filter knows it: no read finds it
	// missing once it is there.
	tx.s.keys.add(p, key)
	return tx.set(partitionKey(p, key), value)
}

// SetMeta writes the metadata entry name.
func (tx *Tx) SetMeta(name string, value []byte) error {
	return tx.set(metaKey(name), value)
}

// set writes stored key k.
func (tx *Tx) set(k, value []byte) error {
	if err := tx.b.Set(k, value, nil); err != nil {
		return fmt.Errorf("store: set: %w", err)
	}
	tx.wrote(k, value, false)
	tx.writes = true
	return nil
}

// Delete removes key from partition p.
func (tx *Tx) Delete(p int, key []byte) error {
	if err := checkPartition(p); err != nil {
		return err
	}
	k := partitionKey(p, key)
	if err := tx.b.Delete(k, nil); err != nil {
		return fmt.Errorf("store: delete: %w", err)
	}
	tx.wrote(k, nil, true)
	return nil
}

// wrote notes that stored key k now holds value (or nothing, if deleted).
func (tx *Tx) wrote(k, value []byte, deleted bool) {
	tx.keys = append(tx.keys, string(k))
	if tx.s.cache.shards != nil {
		var v []byte
		if !deleted && tx.s.cache.holds(k) {
			v = bytes.Clone(value)
			if v == nil {
				v = []byte{}
			}
		}
		tx.values = append(tx.values, v)
		tx.deleted = append(tx.deleted, deleted)
	}
}

// OnApplied arranges for fn to run once the update's writes are in
// Pebble, visible to reads, and before the next Update begins: the
// functions of successive updates run in the updates' order. fn runs
// before the update's fsync, and does not run if the update fails. With
// no writes, the update is applied when its function returns nil. fn
// must be quick and must not call the Store.
func (tx *Tx) OnApplied(fn func()) { tx.applied = append(tx.applied, fn) }

// DropPartition removes every key of partition p with one range delete.
// The space is reclaimed by Pebble's compactions later.
func (tx *Tx) DropPartition(p int) error {
	if err := checkPartition(p); err != nil {
		return err
	}
	lower, upper := partitionBounds(p)
	if err := tx.b.DeleteRange(lower, upper, nil); err != nil {
		return fmt.Errorf("store: drop partition %d: %w", p, err)
	}
	tx.drops = append(tx.drops, p)
	return nil
}

// Update runs fn and applies the writes it made as one atomic batch, which
// a crash keeps whole or not at all. Updates run one at a time, so fn can
// read the keys it is about to write and decide; it must be quick, and
// must not call Update. If fn returns an error, nothing is written and
// Update returns that error. Update returns when the options' Durability
// says; an update that writes is refused with ErrDiskFull while the disk
// is nearly full.
func (s *Store) Update(fn func(tx *Tx) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.active.Done()
	tx := Tx{s: s, b: s.db.NewBatch(), mark: s.marks.last}
	err := fn(&tx)
	if err == nil && tx.writes {
		err = s.roomToWrite()
	}
	if err != nil || tx.b.Empty() {
		// An update that writes nothing may have decided so on what it
		// read (a key already holds a newer version): it returns once
		// what it read is as durable as its own writes would have been.
		var last *flight
		if err == nil {
			tx.runApplied()
			if s.opts.Durability == Synced {
				last = s.flights.latest()
			}
		}
		s.mu.Unlock()
		return errors.Join(err, last.wait(), tx.b.Close())
	}
	if s.opts.Durability != Synced {
		err = s.db.Apply(tx.b, pebble.NoSync)
		s.afterApply(&tx, err)
		if err == nil {
			s.marks.appliedMark(tx.mark)
		}
		s.mu.Unlock()
		if err == nil && s.window != nil {
			err = s.window.applied()
		}
		if err != nil {
			return fmt.Errorf("store: update: %w", err)
		}
		return tx.b.Close()
	}
	f := s.flights.add(tx.keys, tx.drops)
	// Applied under mu, in the order of the decisions; the fsync is
	// waited for outside it, so concurrent updates share fsyncs.
	if err := s.db.ApplyNoSyncWait(tx.b, pebble.Sync); err != nil {
		s.afterApply(&tx, err)
		s.mu.Unlock()
		s.flights.finish(f, tx.keys, tx.drops, err)
		return fmt.Errorf("store: update: %w", err)
	}
	s.afterApply(&tx, nil)
	s.marks.appliedMark(tx.mark)
	s.mu.Unlock()
	err = tx.b.SyncWait()
	s.flights.finish(f, tx.keys, tx.drops, err)
	if err != nil {
		return fmt.Errorf("store: update: sync: %w", err)
	}
	s.marks.raise(tx.mark)
	return tx.b.Close()
}

// afterApply tells the read cache what tx's apply left in Pebble: its
// writes, or, if the apply failed, that those keys are unknown. Once the
// apply succeeded, tx's OnApplied functions run. After a drop is applied, the key filter forgets the partition's keys but for
// those tx wrote.
func (s *Store) afterApply(tx *Tx, err error) {
	if err != nil {
		s.cache.forget(tx.keys, tx.drops)
		return
	}
	s.cache.applied(tx.keys, tx.values, tx.deleted, tx.drops)
	tx.runApplied()
	for _, p := range tx.drops {
		var kept [][]byte
		for _, k := range tx.keys {
			if q, key, ok := splitPartitionKey([]byte(k)); ok && q == p {
				kept = append(kept, key)
			}
		}
		s.keys.dropped(p, kept)
	}
}

// runApplied runs the functions given to OnApplied, in order.
func (tx *Tx) runApplied() {
	for _, fn := range tx.applied {
		fn()
	}
}

// enter locks mu and counts the caller among the active ones, which Close
// waits for; the caller calls active.Done when finished, and unlocks mu.
// On a closed store it returns ErrClosed, with mu unlocked.
func (s *Store) enter() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.active.Add(1)
	return nil
}
