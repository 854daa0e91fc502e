// Package migrate moves partitions between the nodes of a service: a node
// that gains a partition copies it from the previous owner and from as
// many other owners as its service's guarantee needs (Copier), over the
// partition stream of package stream; it records where each partition
// stands (Table); and it deletes a lost partition's data some time later,
// unless the node owns it again or another node is still copying it
// (Drops, on any store; Dropper, on a records.Store).
//
// What a service decides stays in the service: how many owners a copy must
// merge to hold every acknowledged write (Config.Need), what a restarted
// node does before it serves (Config.Restarted), and the partition event
// handler that calls these.
package migrate

// StreamPath is the route of the partition stream between nodes:
// GET StreamPath?partition=N answers the partition's records (stream.Send).
const StreamPath = "/kv/internal/stream"
