// Package store keeps a node's key-value records durably: the shared
// record store (clusterkit.dev/services/kit/records) with this service's
// Version. Every key keeps its latest write and version, every delete is
// kept as a tombstone, and the newer version of a key wins, whatever order
// writes, copies and replicas arrive in.
//
// A write returns once an fsync of the store's log covered it; concurrent
// writes share fsyncs.
package store

import (
	"clusterkit.dev/services/kit/records"
	kit "clusterkit.dev/services/kit/store"
)

type (
	// Record is one key's latest write: its value, or a tombstone.
	Record = records.Record[Version]
	// Entry is a Record and the partition it belongs to.
	Entry = records.Entry[Version]
)

// ErrClosed is returned by every method after Close.
var ErrClosed = kit.ErrClosed

// Store is a node's record store.
type Store struct {
	*records.Store[Version]
}

// Options tune a Store.
type Options struct {
	// NoSync skips the fsyncs of the log: a write returns once it is in
	// the store's log buffer, which reaches the file within milliseconds.
	// A crash can lose the last writes. Replication to other machines
	// can make up for that; a single node cannot.
	NoSync bool
}

// Open opens (creating if needed) the store in directory dir.
func Open(dir string, opts Options) (*Store, error) {
	o := records.Options{TrackMaxLo: true}
	if opts.NoSync {
		o.Store.Durability = kit.NoSync
	}
	rs, err := records.Open(dir, o, VersionOf)
	if err != nil {
		return nil, err
	}
	return &Store{rs}, nil
}

// MaxSeq returns the greatest Version.Seq stored when the store was
// opened, so that a node that numbers writes with a clock never reuses a
// number after a restart, even if its clock stepped back.
func (s *Store) MaxSeq() uint64 { return s.MaxLo() }

// VersionOf makes a Version of its two numbers, the inverse of Pair.
func VersionOf(hi, lo uint64) Version { return Version{Epoch: hi, Seq: lo} }
