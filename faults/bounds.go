package faults

import (
	"slices"
	"time"

	"clusterkit.dev/clusterkit"
)

// Bounds are what a run of one strategy is held to. The README's
// reliability section states the same figures.
type Bounds struct {
	// Window is, per fault, the longest time with no acknowledged write and
	// with no successful read over the partitions the fault's targets led,
	// from its start to the next fault.
	Window map[FaultKind]Window
	// AllWindow bounds the same over every key: a fault of one node must
	// not stop the whole cluster.
	AllWindow time.Duration
	// NoPrimary bounds how long a partition's primary may be a node that
	// cannot serve: failover (about 3.3 s with DefaultConfig) and a margin.
	NoPrimary time.Duration
	// Converge bounds the time from the last heal until every node serves
	// one map; Replicas (kv-async) the time from the end of the load until
	// every owner holds its primary's value.
	Converge, Replicas time.Duration
	// FailedShare bounds the share of operations that failed or may have.
	FailedShare float64
	// FullDiskRefuses: a primary whose disk is full refuses writes to its
	// partitions until space is freed (it is alive: nothing fails it
	// over), so the disk-full write window is bounded by the fault's length
	// and RecoverAfter past its heal.
	FullDiskRefuses bool
	RecoverAfter    time.Duration
	// LossWindow (kv-async): an acknowledged write may be lost only if it
	// was acknowledged at most this long before a fault of its partition's
	// primary began, or while the fault lasted. kv-async's README states
	// the bound: MAX_REPLICATION_LAG (1s), up to twice that when a key was
	// rewritten while its older value waited to ship.
	LossWindow time.Duration
}

// minOpsAfter is how many operations must succeed between a fault's heal
// and the next fault, so that a run in which everything failed cannot pass.
const minOpsAfter = 20

// failedDir is where a failing run saves its history, for TestReplay.
const failedDir = "testdata/failed"

// boundsFor returns a strategy's bounds. Every service fails a partition
// over when its primary is lost (about 3.3 s with DefaultConfig, a hung
// node as fast as a dead one); kv-sync needs no failover for its data. The
// figures are the design's, with a margin for a loaded machine; the
// README's reliability section shows what runs measure.
func boundsFor(strategy string) Bounds {
	w := func(d time.Duration) Window { return Window{Writes: d, Reads: d} }
	b := Bounds{
		AllWindow:   4 * time.Second,
		NoPrimary:   8 * time.Second,
		Converge:    30 * time.Second,
		Replicas:    10 * time.Second,
		FailedShare: 0.15,
		LossWindow:  2 * time.Second,
		Window:      map[FaultKind]Window{},
	}
	led := 6 * time.Second
	switch strategy {
	case "sync":
		led = 4 * time.Second
	case "async":
		// Every request goes to the key's primary: while a killed or
		// paused primary is failed over (about 4 s of each 12 s fault
		// cycle, for a fifth of the keys) its requests fail, where the
		// other services have a node that takes them.
		b.FailedShare = 0.25
		// A client learns of the failover only when a request to the old
		// primary times out (1 s) and it fetches a new map.
		led = 7 * time.Second
		// Its log has no preallocated room: a full disk stops writes at
		// once.
		b.FullDiskRefuses, b.RecoverAfter = true, 3*time.Second
	case "server-side":
		// The shared store refuses writes while its disk is nearly
		// full, and the primary is the one node that takes them.
		b.FullDiskRefuses, b.RecoverAfter = true, 3*time.Second
	}
	for _, k := range Kinds {
		b.Window[k] = w(led)
	}
	// A split takes the Raft leader with it, and two lost nodes may
	// include it. Until the majority has elected a new leader, nodes past
	// MapLease refuse and an owner restarted by an earlier fault must
	// first hear from it; in kv-server-side and kv-async the new leader
	// then counts the other lost node's silence afresh, DeadTimeout more
	// before its partitions move. In the suite's six-voter cluster the
	// four nodes left are a bare majority that must all agree, while they
	// reject votes during their old leader's lease and from candidates
	// whose log is behind: that election has taken most of an 8 s fault,
	// and then the partitions serve again only once it heals. The bound is
	// the fault's hold and 4 s after it heals (README, reliability).
	b.Window[SplitMinority] = w(12 * time.Second)
	b.Window[TwoNodes] = w(12 * time.Second)
	return b
}

// touchesKey reports whether fault f touched key's partition.
func touchesKey(f FaultRecord, key string, partitions int) bool {
	return slices.Contains(f.Partitions, clusterkit.PartitionIndex(key, partitions))
}
