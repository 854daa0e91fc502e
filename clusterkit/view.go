package clusterkit

import (
	"clusterkit.dev/clusterkit/internal/state"
)

// view is an immutable snapshot of the cluster map at one version, built by
// the FSM after each change and published atomically. The hot path reads it
// without locks or allocation.
type view struct {
	version           uint64
	clusterName       string
	partitionCount    int
	replicationFactor int
	nodes             map[string]*Node
	nodeList          []Node // sorted by ID
	partitions        []Partition
	owners            []partitionOwners // owners[i] is partitions[i]'s
	// reason says why the map changed to this view.
	reason Reason
}

// newView builds the view of s. It copies everything it keeps.
func newView(s *state.State, reason Reason) *view {
	v := &view{
		version:           s.Version,
		clusterName:       s.ClusterName,
		partitionCount:    s.PartitionCount,
		replicationFactor: s.ReplicationFactor,
		nodes:             make(map[string]*Node, len(s.Nodes)),
		reason:            reason,
	}
	ids := s.NodeIDs()
	v.nodeList = make([]Node, len(ids))
	for i, id := range ids {
		v.nodeList[i] = nodeFromState(s.Nodes[id].Clone())
		v.nodes[id] = &v.nodeList[i]
	}
	if !s.Initialized() || len(s.Nodes) == 0 {
		return v
	}
	v.partitions = make([]Partition, len(s.Partitions))
	v.owners = make([]partitionOwners, len(s.Partitions))
	for i, sp := range s.Partitions {
		p, o := &v.partitions[i], &v.owners[i]
		p.ID = PartitionID(i)
		p.Index = i
		p.Epoch = sp.Epoch
		p.Version = s.Version
		p.ReplicaNodes = []string{}
		p.JoiningNodes = []string{}
		for _, j := range sp.Joining {
			p.JoiningNodes = append(p.JoiningNodes, j.Node)
			o.joiningFrom = append(o.joiningFrom, j.From)
		}
		if len(sp.Owners) == 0 {
			continue
		}
		p.PrimaryNode = sp.Owners[0]
		o.primary = v.nodes[sp.Owners[0]]
		p.ReplicaNodes = append(p.ReplicaNodes, sp.Owners[1:]...)
		o.replicas = make([]Node, 0, len(sp.Owners)-1)
		for _, id := range sp.Owners[1:] {
			o.replicas = append(o.replicas, *v.nodes[id])
		}
	}
	return v
}

// hasMap reports whether the view has a partition table with owners.
func (v *view) hasMap() bool {
	return v != nil && len(v.partitions) > 0 && v.partitions[0].PrimaryNode != ""
}

// partition returns the view's partition number i, or nil.
func (v *view) partition(i int) *Partition {
	if v == nil || i < 0 || i >= len(v.partitions) {
		return nil
	}
	return &v.partitions[i]
}

// partitionOwners returns the owners of the view's partition number i, or
// nil.
func (v *view) partitionOwners(i int) *partitionOwners {
	if v == nil || i < 0 || i >= len(v.owners) {
		return nil
	}
	return &v.owners[i]
}

// owned counts the partitions id owns as primary and as replica.
func (v *view) owned(id string) (primary, replica int) {
	for i := range v.partitions {
		p := &v.partitions[i]
		if p.PrimaryNode == id {
			primary++
		} else if owns(p, id) {
			replica++
		}
	}
	return primary, replica
}

// mapHealth counts what is wrong with a map.
type mapHealth struct {
	underReplicated int // fewer live ready owners than min(RF, live nodes)
	noLivePrimary   int
	moves           int
	draining        int
}

func (v *view) health() mapHealth {
	var h mapHealth
	live := 0
	for _, n := range v.nodeList {
		if n.State == NodeAlive {
			live++
		}
		if n.Draining {
			h.draining++
		}
	}
	want := min(v.replicationFactor, live)
	for i := range v.partitions {
		p, o := &v.partitions[i], &v.owners[i]
		h.moves += len(p.JoiningNodes)
		if o.primary == nil || o.primary.State != NodeAlive {
			h.noLivePrimary++
		}
		owners := 0
		if o.primary != nil && o.primary.State == NodeAlive {
			owners++
		}
		for _, r := range o.replicas {
			if r.State == NodeAlive {
				owners++
			}
		}
		if owners < want {
			h.underReplicated++
		}
	}
	return h
}
