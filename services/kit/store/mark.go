package store

import "sync/atomic"

// Marks let a caller learn which of its updates are durable without
// waiting for them. An update may carry a mark (Tx.Mark), a number of the
// caller's own that never decreases from one update to the next (say, the
// last sequence number the update handed out); Synced returns the mark of
// the latest update known to be durable. Every update applied before that
// one is durable too, as an fsync of the log covers all that came before.
// An update that sets no mark carries the previous update's.

// marks is the store's bookkeeping of marks.
type marks struct {
	last    uint64        // the mark of the last update applied; under Store.mu
	applied atomic.Uint64 // last, for the syncs
	synced  atomic.Uint64 // the mark of the latest update known durable
}

// Mark sets the update's mark. Marks must not decrease from one update to
// the next.
func (tx *Tx) Mark(m uint64) { tx.mark = m }

// appliedMark records the mark of an update just applied; the caller holds
// Store.mu.
func (ms *marks) appliedMark(m uint64) {
	ms.last = m
	ms.applied.Store(m)
}

// raise raises the synced mark to m.
func (ms *marks) raise(m uint64) {
	for {
		cur := ms.synced.Load()
		if m <= cur || ms.synced.CompareAndSwap(cur, m) {
			return
		}
	}
}

// Synced returns the mark of the latest update known to be durable: it,
// and every update applied before it, survive a power cut. With Synced
// durability that is the latest update whose fsync completed; with
// Windowed, the last one applied before the latest fsync of the log
// began; with NoSync, the last one applied before the latest Sync (Pebble's
// own fsyncs, at its log's rotations, are not seen). 0 until an update
// with a mark is durable.
func (s *Store) Synced() uint64 { return s.marks.synced.Load() }

// Sync fsyncs the log: every update applied before it is durable once it
// returns, whatever the durability.
func (s *Store) Sync() error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.active.Done()
	m := s.marks.last
	s.mu.Unlock()
	if err := s.syncLog(); err != nil {
		return err
	}
	s.marks.raise(m)
	return nil
}
