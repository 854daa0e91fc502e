package client

import (
	"fmt"

	"clusterkit.dev/clusterkit/wire"
)

// Topology is one immutable snapshot of the cluster map, as fetched from
// GET /cluster. The client replaces it as a whole when the map changes;
// nothing in it is ever modified, so it may be read from any goroutine.
// Callers must not modify it either.
type Topology struct {
	ClusterName       string
	Version           uint64
	LeaderID          string
	PartitionCount    int
	ReplicationFactor int
	// Nodes are the cluster's members, sorted by ID.
	Nodes []wire.Node

	byID   map[string]*wire.Node
	routes []Route
}

// Route is where one partition lives at one map version. Its slices are
// shared with the Topology it came from: read them, never modify them.
type Route struct {
	// Partition is the partition number, 0 to PartitionCount-1.
	Partition int
	// PartitionID is "partition-<Partition>".
	PartitionID string
	// Epoch is the partition's epoch; it increases whenever its primary
	// changes.
	Epoch uint64
	// MapVersion is the version of the map this route was read from.
	MapVersion uint64
	// Primary is the partition's primary, nil when it has none.
	Primary *wire.Node
	// Replicas are the ready replicas: owners other than the primary that
	// hold the partition's data.
	Replicas []wire.Node
	// Joining are owners being added: they are copying the partition and
	// must receive writes, but must not serve reads or count towards a
	// quorum until they become replicas.
	Joining []wire.Node

	read  []wire.Node // primary, then replicas
	write []wire.Node // primary, then replicas, then joining
}

// ReadOwners returns the nodes that may serve a read of the partition: the
// primary first, then the ready replicas. The slice is shared.
func (r Route) ReadOwners() []wire.Node { return r.read }

// WriteOwners returns every node a write of the partition must reach: the
// primary first, then the ready replicas, then the joining owners. The
// slice is shared.
func (r Route) WriteOwners() []wire.Node { return r.write }

// newTopology checks info and builds the routing tables of a snapshot.
func newTopology(info *wire.ClusterInfo) (*Topology, error) {
	if info.PartitionCount <= 0 || len(info.Partitions) != info.PartitionCount {
		return nil, fmt.Errorf("%w: map version %d has %d partitions, partition_count %d",
			ErrNoTopology, info.Version, len(info.Partitions), info.PartitionCount)
	}
	t := &Topology{
		ClusterName:       info.ClusterName,
		Version:           info.Version,
		LeaderID:          info.LeaderID,
		PartitionCount:    info.PartitionCount,
		ReplicationFactor: info.ReplicationFactor,
		Nodes:             info.Nodes,
		byID:              make(map[string]*wire.Node, len(info.Nodes)),
		routes:            make([]Route, info.PartitionCount),
	}
	for i := range t.Nodes {
		t.byID[t.Nodes[i].ID] = &t.Nodes[i]
	}
	for i, p := range info.Partitions {
		if p.Index != i {
			return nil, fmt.Errorf("%w: map version %d lists partition %d at position %d", ErrNoTopology, info.Version, p.Index, i)
		}
		r := Route{Partition: i, PartitionID: wire.PartitionID(i), Epoch: p.Epoch, MapVersion: info.Version}
		r.Primary = t.byID[p.PrimaryNode]
		r.Replicas = t.nodes(p.ReplicaNodes)
		r.Joining = t.nodes(p.JoiningNodes)
		n := len(r.Replicas) + len(r.Joining)
		if r.Primary != nil {
			n++
		}
		// read and write share one array: write = read + joining.
		all := make([]wire.Node, 0, n)
		if r.Primary != nil {
			all = append(all, *r.Primary)
		}
		all = append(all, r.Replicas...)
		r.read = all[:len(all):len(all)]
		r.write = append(all, r.Joining...)
		t.routes[i] = r
	}
	return t, nil
}

// nodes resolves IDs to members, skipping IDs the map does not list.
func (t *Topology) nodes(ids []string) []wire.Node {
	out := make([]wire.Node, 0, len(ids))
	for _, id := range ids {
		if n := t.byID[id]; n != nil {
			out = append(out, *n)
		}
	}
	return out
}

// Node returns the member with the given ID, or nil.
func (t *Topology) Node(id string) *wire.Node { return t.byID[id] }

// Route returns the route of key's partition. It takes no lock and does
// not allocate. With ErrNoPrimary the route is still filled in.
func (t *Topology) Route(key string) (Route, error) {
	return t.Partition(wire.PartitionIndex(key, t.PartitionCount))
}

// Partition returns the route of partition number i.
func (t *Topology) Partition(i int) (Route, error) {
	if i < 0 || i >= len(t.routes) {
		return Route{}, fmt.Errorf("client: partition %d is outside 0..%d", i, len(t.routes)-1)
	}
	r := t.routes[i]
	if r.Primary == nil {
		return r, ErrNoPrimary
	}
	return r, nil
}
