// Package store is kv-async's storage: each key's latest record, the
// node's change log of every partition, the replication cursors and
// fences, on the services' shared store (clusterkit.dev/services/kit/store,
// Pebble).
//
// # Layout
//
// A cluster partition is a store partition (a key prefix). Inside it:
//
//	'c' node 0 inc    -> seq       a cursor: this node holds every record
//	                                of that node's index (in its store
//	                                incarnation inc) up to seq
//	'd' key           -> record    the key's latest Record (values and
//	                                tombstones), with its index position
//	'f'               -> epoch     the fence: the highest epoch a
//	                                replication batch was accepted from
//
// The index is the node's change log: one entry per key, at the position
// of its latest record, moved to a new position whenever the record
// changes. "Every entry after n" is what a replica that holds everything
// up to n still needs. Positions are the store's local sequence numbers:
// one counter for the whole store, whose bound is kept in the store's
// metadata (written 4,096 positions ahead, so once per 4,096 positions;
// a restart goes on above it), so they never repeat, even when a
// partition is dropped and gained again.
//
// The index is kept in memory, not in the store: each record holds its
// position, so Open rebuilds the index from a scan of the records, and a
// write is one key of the shared store rather than three (the record,
// the entry, and the deletion of the entry it replaced). It costs about
// 40 bytes a key plus the key. An entry's arrival time, which the
// replication lag reports, is the record's write time after a restart. The store's incarnation, a random number made
// when the store is created, tells apart two lives of a node ID whose
// data was wiped. Dropping a partition is one range delete of its prefix.
//
// # Changes
//
// Every change (a primary's writes, a replicated batch, a frame of a
// copied partition) is one Update of the shared store: atomic, ordered
// with the others, and durable as Options.SyncWindow says. Positions are
// handed out in that order, and each update is marked with the last
// position handed out, so Synced tells which positions are durable: a
// primary ships only those.
package store
