// Package placement computes which nodes own which partitions.
//
// It is a pure function of (previous table, eligible nodes, config): no I/O,
// no clocks, no randomness. The raft leader calls Compute and commits the
// result, so every node agrees on the table because the table is replicated,
// not because every node computes it.
package placement
