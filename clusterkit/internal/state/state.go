// Package state holds the replicated cluster state and the commands that
// change it. Apply is deterministic: every node that applies the same
// commands in the same order holds the same State. It does no I/O.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Errors returned by Apply. The public package re-exports them.
var (
	ErrConflict     = errors.New("clusterkit: conflict")
	ErrUnknownNode  = errors.New("clusterkit: unknown node")
	ErrStaleVersion = errors.New("clusterkit: stale map version")
	ErrInvalid      = errors.New("clusterkit: invalid command")
)

// NodeStatus is a member's liveness as decided by the leader.
type NodeStatus string

// Node statuses.
const (
	StatusAlive   NodeStatus = "alive"
	StatusSuspect NodeStatus = "suspect"
	StatusDead    NodeStatus = "dead"
)

// Node is a member of the cluster map.
type Node struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	HTTPAddr string            `json:"http_addr"`
	RaftAddr string            `json:"raft_addr"`
	Zone     string            `json:"zone,omitempty"`
	Weight   int               `json:"weight"`
	Meta     map[string]string `json:"meta,omitempty"`
	Status   NodeStatus        `json:"status"`
	// StatusSince is when the leader set Status (Unix milliseconds, from
	// the command, so every node holds the same value).
	StatusSince int64 `json:"status_since,omitempty"`
	// Draining nodes are being emptied: they get no new partitions and
	// lose the ones they have through make-before-break moves.
	Draining bool `json:"draining,omitempty"`
}

// Clone returns a deep copy.
func (n *Node) Clone() *Node {
	c := *n
	c.Meta = maps.Clone(n.Meta)
	return &c
}

// sameIdentity reports whether two records describe the same node at the
// same addresses.
func (n *Node) sameIdentity(o *Node) bool {
	return n.ID == o.ID && n.HTTPAddr == o.HTTPAddr && n.RaftAddr == o.RaftAddr
}

func (n *Node) sameAttrs(o *Node) bool {
	return n.Name == o.Name && n.Zone == o.Zone && n.Weight == o.Weight && maps.Equal(n.Meta, o.Meta)
}

// Partition is one partition's assignment. Owners[0] is the primary.
type Partition struct {
	// Owners are the ready owners; Owners[0] is the primary.
	Owners []string `json:"owners"`
	// Joining are owners being added: they copy the partition and become
	// owners when they report ready.
	Joining []Joining `json:"joining,omitempty"`
	// Epoch increases by one whenever the primary changes, so that a
	// service can fence writes from a deposed primary.
	Epoch uint64 `json:"epoch"`
	// History holds the partition's last MaxHistory owner changes, oldest
	// first. Apply never modifies a History slice in place (it builds a
	// new one), so clones may share them.
	History []Change `json:"history,omitempty"`
}

// Joining is an owner being added to a partition.
type Joining struct {
	Node string `json:"node"`
	// From is the live owner the node copies from ("" when none).
	From string `json:"from,omitempty"`
	// Since is when the move began (Unix milliseconds, from the command).
	Since int64 `json:"since"`
	// Reason says why the move began.
	Reason string `json:"reason,omitempty"`
	// Replaces is the owner this node is meant to replace, "" when it adds
	// an owner.
	Replaces string `json:"replaces,omitempty"`
	// Rule is the placement rule that chose this node, if known.
	Rule string `json:"rule,omitempty"`
}

// IsOwner reports whether id is a ready owner.
func (p Partition) IsOwner(id string) bool { return slices.Contains(p.Owners, id) }

// JoiningIndex returns the index of id in Joining, or -1.
func (p Partition) JoiningIndex(id string) int {
	return slices.IndexFunc(p.Joining, func(j Joining) bool { return j.Node == id })
}

func (p Partition) clone() Partition {
	return Partition{Owners: slices.Clone(p.Owners), Joining: slices.Clone(p.Joining), Epoch: p.Epoch, History: p.History}
}

// Primary returns the primary's ID or "".
func (p Partition) Primary() string {
	if len(p.Owners) == 0 {
		return ""
	}
	return p.Owners[0]
}

// State is the replicated cluster state.
type State struct {
	ClusterName       string `json:"cluster_name"`
	PartitionCount    int    `json:"partition_count"`
	ReplicationFactor int    `json:"replication_factor"`
	// Version increases with every committed change to the state.
	Version    uint64           `json:"version"`
	Nodes      map[string]*Node `json:"nodes"`
	Partitions []Partition      `json:"partitions"`
}

// New returns an empty, uninitialised state.
func New() *State {
	return &State{Nodes: map[string]*Node{}}
}

// Initialized reports whether the cluster settings have been committed.
func (s *State) Initialized() bool { return s.PartitionCount > 0 }

// Clone returns a deep copy.
func (s *State) Clone() *State {
	c := *s
	c.Nodes = make(map[string]*Node, len(s.Nodes))
	for id, n := range s.Nodes {
		c.Nodes[id] = n.Clone()
	}
	c.Partitions = make([]Partition, len(s.Partitions))
	for i, p := range s.Partitions {
		c.Partitions[i] = p.clone()
	}
	return &c
}

// NodeIDs returns the member IDs in sorted order.
func (s *State) NodeIDs() []string {
	return slices.Sorted(maps.Keys(s.Nodes))
}

// Marshal encodes the state for a raft snapshot.
func (s *State) Marshal() ([]byte, error) { return json.Marshal(s) }

// Unmarshal decodes a state written by Marshal. It refuses a state that
// Apply could not have built and that the code reading it would trip on:
// a missing node record, a partition count that does not match the
// partitions, an owner or joiner that is not a member or is listed twice.
func Unmarshal(b []byte) (*State, error) {
	s := New()
	if err := json.Unmarshal(b, s); err != nil {
		return nil, err
	}
	if s.Nodes == nil {
		s.Nodes = map[string]*Node{}
	}
	if err := s.checkStructure(); err != nil {
		return nil, err
	}
	for i := range s.Partitions {
		// A snapshot written before history existed has none; one with
		// more than MaxHistory entries keeps its newest ones.
		if h := s.Partitions[i].History; len(h) > MaxHistory {
			s.Partitions[i].History = h[len(h)-MaxHistory:]
		}
	}
	return s, nil
}

func (s *State) checkStructure() error {
	if s.PartitionCount < 0 || s.PartitionCount > MaxPartitionCount || len(s.Partitions) != s.PartitionCount {
		return fmt.Errorf("%w: %d partitions, partition count %d", ErrInvalid, len(s.Partitions), s.PartitionCount)
	}
	for id, n := range s.Nodes {
		if n == nil || n.ID != id {
			return fmt.Errorf("%w: node record under %q is missing or names another node", ErrInvalid, id)
		}
	}
	for i, p := range s.Partitions {
		seen := make(map[string]bool, len(p.Owners)+len(p.Joining))
		ids := slices.Clone(p.Owners)
		for _, j := range p.Joining {
			ids = append(ids, j.Node)
		}
		for _, id := range ids {
			if _, ok := s.Nodes[id]; !ok {
				return fmt.Errorf("%w: partition %d: %q", ErrUnknownNode, i, id)
			}
			if seen[id] {
				return fmt.Errorf("%w: partition %d lists %q twice", ErrInvalid, i, id)
			}
			seen[id] = true
		}
	}
	return nil
}
