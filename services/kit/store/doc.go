// Package store is a node's durable key-value storage, shared by the
// services: an embedded Pebble database (github.com/cockroachdb/pebble/v2)
// in one directory.
//
// # Layout
//
// A partition is a key prefix: every key of partition p is stored under
// "p" + p (4 bytes, big endian) + key, so a partition is one contiguous key
// range. Streaming it to another node is one range scan (Scan), and dropping
// it is one range delete (Tx.DropPartition), whatever its size. Small
// metadata (a service's epochs, sequence counters, fences) lives under "m" +
// name, outside every partition (Tx.SetMeta, Store.Meta).
//
// The store keeps bytes. What the values mean — versions, tombstones, which
// of two writes of a key wins — is the service's: it reads the keys it is
// about to write and decides inside one Update, which Updates run one at a
// time.
//
// # Durability
//
// Options.Durability chooses when an Update returns:
//
//   - Synced (the default): once Pebble's write-ahead log holds the update
//     and an fsync covered it. Concurrent Updates share fsyncs: Pebble's
//     log commits every update waiting at the moment of an fsync together
//     (group commit). Pebble makes an update visible to readers as soon as
//     it is in its memtable, before the fsync; the store hides that: Get
//     and Scan return a record written by an update whose fsync is still
//     running only once that fsync has completed, so a read never returns
//     what a crash could take back.
//   - Windowed: once the update is in the log's buffer, provided the oldest
//     update not yet fsynced is younger than Options.SyncWindow; otherwise
//     it waits for an fsync. A background loop fsyncs the log half a window
//     after an update. A power cut loses at most the updates of the last
//     window; so may a crash of the process alone, as Pebble writes its
//     log buffer to the file from a goroutine of its own, when a block
//     fills or an fsync is due (a test that kills a writing process with
//     a 50 ms window loses hundreds of acknowledged updates).
//   - NoSync: never waits for an fsync; Pebble syncs when it rotates its
//     log and flushes memtables. A crash of the process alone loses what
//     Pebble had not written to the file: it writes its log buffer when a
//     32 KiB block fills or an fsync is due, so without fsyncs up to a
//     block of the latest updates, however old, down to all of a store
//     that took less. For measurements and for nodes whose replicas make
//     up for a lost machine, and that catch up from them on restart
//     (migrate.Copier.Fill, for a store that came back empty too).
//
// Whatever the durability, Sync fsyncs the log, and Synced tells without
// waiting which updates are durable: each update may carry a mark of the
// caller's (Tx.Mark), and Synced returns the mark of the latest update
// known durable. A service that ships only durable writes to other nodes
// reads it.
//
// # Reads
//
// A point read in Pebble seeks the skiplist of every memtable not yet
// flushed and the tables of each level. The services read every key
// before they write it and read keys soon after writing them, so the
// store keeps two things in memory:
//
//   - a Bloom filter of the keys each partition holds
//     (Options.KeyFilterSize), filled at Open from a scan of every key and
//     by each Update before Pebble applies it, so that a read of a key the
//     store does not hold (every new key a write checks) is answered
//     without Pebble, but for about 1% of them. It never answers "absent"
//     for a key Pebble holds;
//   - a bounded cache of the latest value of recently read keys, and of
//     recently read absent ones (Options.ReadCacheSize), which Updates
//     keep exact: an entry holds what Pebble holds, or is absent.
//
// # A full disk
//
// Pebble treats a failed write of its log as fatal: it cannot tell which of
// the updates in the failed block reached the disk, so it stops the process
// (Options.Logger's Fatalf) rather than acknowledge any of them. The store
// therefore refuses updates before the disk is full: an Update that writes
// returns an error matching ErrDiskFull while the file system has less
// than Options.MinFreeBytes available, and changes nothing. Updates that
// only delete (a dropped partition) still run, so room can be made. Reads
// keep working, and writes are accepted again as soon as there is room. A
// failed flush or compaction (the disk filled by something else) is
// reported by Pebble and retried; it does not stop the store.
package store
