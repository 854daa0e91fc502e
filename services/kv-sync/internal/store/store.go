// Package store keeps a node's key-value records durably: the shared
// record store (clusterkit.dev/services/kit/records) with this service's
// Version. Every key keeps its latest write and version, every delete is
// kept as a tombstone, and the newer version of a key wins, whatever order
// writes, copies and replicas arrive in.
//
// A write returns once an fsync of the store's log covered it; concurrent
// writes share fsyncs. Reads never return a write that a crash could
// still take back.
package store

import (
	"clusterkit.dev/services/kit/records"
	kit "clusterkit.dev/services/kit/store"
	"github.com/cockroachdb/pebble/v2/vfs"
)

type (
	// Record is one key's latest write: its value, or a tombstone.
	Record = records.Record[Version]
	// Entry is a Record and the partition it belongs to.
	Entry = records.Entry[Version]
	// Store is a node's record store.
	Store = records.Store[Version]
)

// ErrClosed is returned by every method after Close.
var ErrClosed = kit.ErrClosed

// Options tune a Store.
type Options struct {
	// NoSync skips the fsyncs of the log: a write returns once it is in
	// the store's log buffer, which reaches the file within milliseconds.
	// A crash can lose the last writes. Replication to other machines
	// can make up for that; a single node cannot.
	NoSync bool
	// FS is the file system of the store. Default: the operating system's;
	// tests cut the power with vfs.NewCrashableMem.
	FS vfs.FS
}

// Open opens (creating if needed) the store in directory dir.
func Open(dir string, opts Options) (*Store, error) {
	o := records.Options{}
	o.Store.FS = opts.FS
	if opts.NoSync {
		o.Store.Durability = kit.NoSync
	}
	return records.Open(dir, o, VersionOf)
}

// VersionOf makes a Version of its two numbers, the inverse of Pair.
func VersionOf(hi, lo uint64) Version { return Version{Counter: hi, Writer: lo} }
