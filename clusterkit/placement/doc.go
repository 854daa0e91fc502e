// Package placement computes which nodes own which partitions.
//
// It is a pure function of (previous table, eligible nodes, config): no I/O,
// no clocks, no randomness. The raft leader calls Compute and commits the
// result, so every node agrees on the table because the table is replicated,
// not because every node computes it.
//
// Compute shares the P·RF owner slots, and the P primaries, among the nodes
// in proportion to their weights, keeps the owners of a partition in
// distinct zones whenever there are enough zones, and moves as few slots
// and primaries as that balance allows when nodes join or leave. Summarize
// and Diff describe a table and the cost of moving from one table to
// another. DESIGN.md in this directory describes the algorithm and states
// the guarantees with their exact bounds.
package placement
