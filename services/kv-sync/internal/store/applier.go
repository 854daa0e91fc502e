package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The applier merges the pending records, already durable in the log, into
// the bbolt file: applyEvery after the first arrives (at once when they
// crowd), all of them in one transaction. Then it forgets the records that
// no later write replaced and deletes the log segments bbolt now covers.

// rotateAppliedAt is the size from which the applier starts a new log
// segment when bbolt holds every entry of the current one, so that it can
// be deleted.
const rotateAppliedAt = 4 << 20

// kick wakes the applier.
func (s *Store) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// applyLoop runs apply rounds until Close, and a last one then.
func (s *Store) applyLoop() {
	defer close(s.done)
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-s.stop:
			s.lastRound()
			return
		case <-s.wake:
		}
		if !s.crowded() {
			t.Reset(s.applyEvery)
			select {
			case <-s.stop:
				t.Stop()
				s.lastRound()
				return
			case <-t.C:
			case <-s.wake:
				t.Stop()
			}
		}
		_ = s.applyRound()
	}
}

// lastRound applies every pending record and leaves the log empty.
func (s *Store) lastRound() {
	if s.applyRound() == nil {
		upto := s.log.lastLSN()
		if s.log.rotateIfApplied(upto, 0) == nil {
			_ = s.log.removeThrough(upto)
		}
	}
}

// crowded reports whether the pending records are over half their bound.
func (s *Store) crowded() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.pending) >= maxPending/2
}

// applyRound merges every pending record into bbolt in one transaction
// and forgets those no write replaced meanwhile. A failure sticks: the
// records stay pending, readable, and later writes fail.
func (s *Store) applyRound() error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.mu.RLock()
	if s.err != nil {
		err := s.err
		s.mu.RUnlock()
		return err
	}
	type applied struct {
		k   pkey
		lsn uint64
	}
	batch := make([]Entry, 0, len(s.pending))
	done := make([]applied, 0, len(s.pending))
	for k, pr := range s.pending {
		batch = append(batch, Entry{Partition: k.partition, Record: pr.rec})
		done = append(done, applied{k, pr.lsn})
	}
	// Writers append under mu: every entry up to upto is pending or
	// already in bbolt.
	upto := s.log.lastLSN()
	s.mu.RUnlock()
	if len(batch) > 0 {
		err := s.db.Update(func(tx *bolt.Tx) error {
			var name [24]byte
			buckets := map[int]*bolt.Bucket{}
			for i := range batch {
				e := &batch[i]
				b := buckets[e.Partition]
				if b == nil {
					var err error
					if b, err = tx.CreateBucketIfNotExists(bucketName(name[:0], e.Partition)); err != nil {
						return err
					}
					buckets[e.Partition] = b
				}
				if _, _, err := merge(b, &e.Record); err != nil {
					return err
				}
			}
			return nil
		})
		s.mu.Lock()
		if err != nil {
			if s.err == nil {
				s.err = fmt.Errorf("store: apply log to bbolt: %w", err)
			}
			s.roomy.Broadcast()
			err = s.err
			s.mu.Unlock()
			return err
		}
		for _, a := range done {
			if pr := s.pending[a.k]; pr != nil && pr.lsn == a.lsn {
				delete(s.pending, a.k)
			}
		}
		s.roomy.Broadcast()
		s.mu.Unlock()
	}
	if err := s.log.rotateIfApplied(upto, rotateAppliedAt); err != nil {
		return err
	}
	return s.log.removeThrough(upto)
}
