package store

import (
	"fmt"
	"log"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Durability says when an Update returns; see the package documentation.
type Durability int

const (
	// Synced returns once an fsync of the log covered the update.
	Synced Durability = iota
	// Windowed returns once the update is in the log, and keeps the
	// updates not yet fsynced younger than Options.SyncWindow.
	Windowed
	// NoSync never waits for an fsync.
	NoSync
)

// String names d as the options documentation does.
func (d Durability) String() string {
	switch d {
	case Synced:
		return "synced"
	case Windowed:
		return "windowed"
	case NoSync:
		return "nosync"
	}
	return fmt.Sprintf("Durability(%d)", int(d))
}

// Options tune a Store. The zero value is a valid configuration: synced
// updates on the operating system's file system.
type Options struct {
	// Durability says when an Update returns. Default Synced.
	Durability Durability
	// SyncWindow bounds how long a Windowed update stays unsynced.
	// Required (positive) with Windowed, ignored otherwise.
	SyncWindow time.Duration
	// OnSync, if set, is told the duration of each fsync the Windowed
	// durability makes.
	OnSync func(d time.Duration)

	// MemTableSize is the size of Pebble's memtable: the writes it holds
	// before it flushes them to a table file. Default 4 MiB (Pebble's): a
	// larger one made point reads no cheaper under the load generator, as
	// a read's seek through the memtable's skiplist grows with it.
	MemTableSize uint64
	// CacheSize is the size of Pebble's block cache. Default 64 MiB.
	CacheSize int64
	// ReadCacheSize bounds the store's own cache of the latest value of
	// recently read keys, which answers most point reads
	// without a seek through Pebble's memtables and levels. Default
	// 32 MiB; negative turns it off.
	ReadCacheSize int64
	// KeyFilterSize bounds the memory of the store's Bloom filters of the
	// keys each partition holds (about 1.3 bytes a key, filled at Open by
	// reading every key), which answer a point read of an absent key —
	// every new key a write checks — without a seek through Pebble. A
	// partition whose filter would pass the bound is read from Pebble
	// until the store is opened again or the partition dropped. Default
	// 64 MiB; negative turns them off.
	KeyFilterSize int64
	// MinFreeBytes is the free space under which updates that write are
	// refused with ErrDiskFull. It must cover a memtable's flush and a log
	// file. Default 4 × MemTableSize + 64 MiB.
	MinFreeBytes uint64

	// FS is the file system the store lives on. Default vfs.Default, the
	// operating system's; tests pass vfs.NewCrashableMem() to cut the
	// power, or a wrapper that fails operations.
	FS vfs.FS
	// Logger receives Pebble's messages. Default: errors to the standard
	// logger, informational messages dropped, Fatalf exiting the process.
	Logger pebble.Logger

	// diskCheckEvery is how long a measure of the free space is trusted
	// while it is well above MinFreeBytes (tests set it below zero to
	// measure at every update).
	diskCheckEvery time.Duration
}

// Defaults.
const (
	defaultMemTableSize  = 4 << 20
	defaultCacheSize     = 64 << 20
	defaultReadCacheSize = 32 << 20
	defaultKeyFilterSize = 64 << 20
	defaultDiskCheck     = 100 * time.Millisecond
)

// fill checks o and fills in the defaults.
func (o *Options) fill() error {
	switch o.Durability {
	case Synced, NoSync:
	case Windowed:
		if o.SyncWindow <= 0 {
			return fmt.Errorf("store: Windowed durability needs a positive SyncWindow, have %v", o.SyncWindow)
		}
	default:
		return fmt.Errorf("store: unknown durability %d", int(o.Durability))
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = defaultMemTableSize
	}
	if o.CacheSize <= 0 {
		o.CacheSize = defaultCacheSize
	}
	if o.ReadCacheSize == 0 {
		o.ReadCacheSize = defaultReadCacheSize
	}
	if o.KeyFilterSize == 0 {
		o.KeyFilterSize = defaultKeyFilterSize
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = 4*o.MemTableSize + 64<<20
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Logger == nil {
		o.Logger = quietLogger{}
	}
	if o.diskCheckEvery == 0 {
		o.diskCheckEvery = defaultDiskCheck
	}
	return nil
}

// pebbleOptions returns the Pebble options of o, with cache and events.
func (o *Options) pebbleOptions(cache *pebble.Cache, events *pebble.EventListener) *pebble.Options {
	po := &pebble.Options{
		FS:                 o.FS,
		Cache:              cache,
		MemTableSize:       o.MemTableSize,
		Logger:             o.Logger,
		EventListener:      events,
		FormatMajorVersion: pebble.FormatNewest,
	}
	// Bloom filters on every level: a point read of a key a table
	// does not hold (every new key a write checks) skips the table.
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	po.EnsureDefaults()
	return po
}

// quietLogger logs Pebble's errors and drops its informational messages,
// which a node would otherwise print at every flush and compaction.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}

func (quietLogger) Errorf(format string, args ...any) { log.Printf("store: pebble: "+format, args...) }

func (quietLogger) Fatalf(format string, args ...any) { log.Fatalf("store: pebble: "+format, args...) }
