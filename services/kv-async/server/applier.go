package server

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The applier: one goroutine per store that applies the write-ahead log to
// the bbolt file in the background, many entries per transaction, and
// then lets the memtable forget them and the log drop its old segments.
// Writers queue their entries here; the queue is bounded (see admit).

// walEntry is a log entry waiting to be applied to bbolt.
type walEntry struct {
	lsn  uint64
	ops  []walOp
	size int
}

// enqueue queues a written log entry for the applier.
func (s *Store) enqueue(e *walEntry) {
	s.amu.Lock()
	s.queue = append(s.queue, e)
	s.queued += e.size
	wake := len(s.queue) == 1 || s.queued > s.opts.MaxQueuedBytes/2
	s.amu.Unlock()
	if wake {
		s.kick()
	}
}

// unapplied returns the bytes of log entries not yet applied to bbolt.
func (s *Store) unapplied() int {
	s.amu.Lock()
	defer s.amu.Unlock()
	return s.queued
}

// kick wakes the applier.
func (s *Store) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// awaitRound waits until the applier finishes a round after round.
func (s *Store) awaitRound(ctx context.Context, round uint64) error {
	stop := context.AfterFunc(ctx, func() {
		s.amu.Lock()
		s.acond.Broadcast()
		s.amu.Unlock()
	})
	defer stop()
	s.amu.Lock()
	defer s.amu.Unlock()
	for s.forgot == round && s.applyErr == nil && !s.closed.Load() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.acond.Wait()
	}
	return s.applyErr
}

// applyLoop applies fsynced log entries to bbolt, waiting ApplyInterval
// after the first of a round arrives so that a round carries many; at
// once when the queue is over half its bound.
func (s *Store) applyLoop() {
	defer close(s.done)
	for {
		select {
		case <-s.quit:
			s.amu.Lock()
			crashed := s.crashed
			s.amu.Unlock()
			if !crashed {
				s.applyRound()
			}
			return
		case <-s.wake:
		}
		t := time.NewTimer(s.opts.ApplyInterval)
	gather:
		for !s.crowded() {
			select {
			case <-s.quit:
				break gather
			case <-t.C:
				break gather
			case <-s.wake:
			}
		}
		t.Stop()
		for s.applyRound() {
		}
	}
}

// fullDiskRetry is how long the applier waits before it tries again a
// round that a full disk refused.
const fullDiskRetry = 100 * time.Millisecond

// crowded reports whether the queue is over half its bound.
func (s *Store) crowded() bool {
	s.amu.Lock()
	defer s.amu.Unlock()
	return s.queued > s.opts.MaxQueuedBytes/2
}

// applyRound applies the fsynced entries of the queue to bbolt and
// reports whether it should run again at once (more are fsynced). While
// entries wait, it keeps the applier awake.
func (s *Store) applyRound() (again bool) {
	synced := s.wal.syncedLSN()
	s.amu.Lock()
	if s.applyErr != nil {
		s.amu.Unlock()
		return false
	}
	n := 0
	for n < len(s.queue) && s.queue[n].lsn <= synced {
		n++
	}
	batch := s.queue[:n:n]
	s.amu.Unlock()
	var err error
	if len(batch) > 0 {
		err = s.apply(batch)
		s.wmu.Lock()
		if err == nil {
			s.mem.forget(batch)
		}
		s.wmu.Unlock()
	}
	s.amu.Lock()
	if err != nil && errors.Is(err, syscall.ENOSPC) {
		// A full disk frees up again: bbolt rolled the transaction back,
		// the entries stay queued (and readable from memory) and the next
		// round tries again; writers wait in admit once the queue is full.
		time.AfterFunc(fullDiskRetry, func() {
			select {
			case s.wake <- struct{}{}:
			default:
			}
		})
	} else if err != nil {
		s.applyErr = fmt.Errorf("kv-async: store: apply log to bbolt: %w", err)
	} else if n > 0 {
		bytes := 0
		for _, e := range batch {
			bytes += e.size
		}
		clear(s.queue[:n])
		s.queue = s.queue[n:]
		s.queued -= bytes
		s.forgot++
		s.acond.Broadcast()
	}
	waiting := len(s.queue) > 0 && err == nil
	again = waiting && s.queue[0].lsn <= s.wal.syncedLSN() && s.queued > s.opts.MaxQueuedBytes/2
	s.amu.Unlock()
	if n > 0 && err == nil {
		_ = s.wal.removeThrough(s.applied)
	}
	if waiting && !again {
		s.kick()
	}
	return again
}

// apply applies log entries to bbolt in one transaction, with the LSN of
// the last one, and sets s.applied.
func (s *Store) apply(entries []*walEntry) error {
	if len(entries) == 0 {
		return nil
	}
	start := time.Now()
	ops := 0
	last := entries[len(entries)-1].lsn
	err := s.db.Update(func(tx *bolt.Tx) error {
		parts := map[int]*pbucket{}
		var maxLocal uint64
		for _, e := range entries {
			for i := range e.ops {
				op := &e.ops[i]
				pb := parts[op.partition]
				if pb == nil {
					var err error
					if pb, err = partition(tx, op.partition, true); err != nil {
						return err
					}
					parts[op.partition] = pb
				}
				var err error
				switch op.kind {
				case opPut:
					err = pb.put(op)
					maxLocal = max(maxLocal, op.rec.local)
				case opCursor:
					err = pb.advance(op.cursor)
				case opFence:
					err = pb.raiseFence(op.epoch)
				}
				if err != nil {
					return fmt.Errorf("log entry %d: %w", e.lsn, err)
				}
				ops++
			}
		}
		meta := tx.Bucket(bucketMeta)
		if maxLocal > meta.Sequence() {
			if err := meta.SetSequence(maxLocal); err != nil {
				return err
			}
		}
		return meta.Put(keyApplied, u64(last))
	})
	if err != nil {
		return err
	}
	s.applied = last
	if s.opts.OnApply != nil {
		s.opts.OnApply(len(entries), ops, time.Since(start))
	}
	return nil
}
