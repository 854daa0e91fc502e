package clusterkit

import (
	"errors"
	"sync"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// errStoreClosed is returned by a closed raftStore.
var errStoreClosed = errors.New("clusterkit: raft store closed")

// raftStore is the bbolt log and stable store, made safe to close while
// raft's transport may still be handling a request: raft's transport runs
// heartbeats on its own goroutines, which can outlive raft's Shutdown by a
// moment, and raft panics when saving its term fails. After Close, reads
// and log writes fail and stable writes are dropped; the node is stopped and
// learns the term again when it restarts.
type raftStore struct {
	mu     sync.RWMutex
	closed bool
	db     *raftboltdb.BoltStore
}

var (
	_ raft.LogStore    = (*raftStore)(nil)
	_ raft.StableStore = (*raftStore)(nil)
)

func (s *raftStore) read(fn func() error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return errStoreClosed
	}
	return fn()
}

// Close closes the database once no operation is in flight.
func (s *raftStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.db.Close()
}

func (s *raftStore) FirstIndex() (i uint64, err error) {
	err = s.read(func() (e error) { i, e = s.db.FirstIndex(); return })
	return i, err
}

func (s *raftStore) LastIndex() (i uint64, err error) {
	err = s.read(func() (e error) { i, e = s.db.LastIndex(); return })
	return i, err
}

func (s *raftStore) GetLog(index uint64, l *raft.Log) error {
	return s.read(func() error { return s.db.GetLog(index, l) })
}

func (s *raftStore) StoreLog(l *raft.Log) error {
	return s.read(func() error { return s.db.StoreLog(l) })
}

func (s *raftStore) StoreLogs(logs []*raft.Log) error {
	return s.read(func() error { return s.db.StoreLogs(logs) })
}

func (s *raftStore) DeleteRange(min, max uint64) error {
	return s.read(func() error { return s.db.DeleteRange(min, max) })
}

func (s *raftStore) Get(k []byte) (v []byte, err error) {
	err = s.read(func() (e error) { v, e = s.db.Get(k); return })
	return v, err
}

func (s *raftStore) GetUint64(k []byte) (v uint64, err error) {
	err = s.read(func() (e error) { v, e = s.db.GetUint64(k); return })
	return v, err
}

// Set drops the write after Close (see raftStore).
func (s *raftStore) Set(k, v []byte) error {
	err := s.read(func() error { return s.db.Set(k, v) })
	if errors.Is(err, errStoreClosed) {
		return nil
	}
	return err
}

// SetUint64 drops the write after Close (see raftStore).
func (s *raftStore) SetUint64(k []byte, v uint64) error {
	err := s.read(func() error { return s.db.SetUint64(k, v) })
	if errors.Is(err, errStoreClosed) {
		return nil
	}
	return err
}
