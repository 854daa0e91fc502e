package state

import (
	"encoding/json"
	"fmt"
	"slices"
)

// formatV1 is the first byte of every encoded command. A node that reads a
// format it does not know fails loudly instead of misapplying the log.
const formatV1 byte = 1

// Op names a command.
type Op string

// Commands.
const (
	// OpInit commits the cluster settings; only the first one applies.
	OpInit Op = "init"
	// OpJoin adds a node to the map, or is a no-op for the same node.
	OpJoin Op = "join"
	// OpRemove removes a node from the map and from every partition.
	OpRemove Op = "remove"
	// OpSetTable replaces the partition table, if computed from the current
	// version.
	OpSetTable Op = "set_table"
	// OpSetStatus changes a node's liveness status.
	OpSetStatus Op = "set_status"
	// OpSetDraining marks a node as draining, or not.
	OpSetDraining Op = "set_draining"
	// OpBeginMoves adds joining owners to partitions.
	OpBeginMoves Op = "begin_moves"
	// OpCompleteMoves makes joining owners ready owners, each releasing an
	// old owner in the same change. Moves whose joiner is no longer
	// joining are skipped.
	OpCompleteMoves Op = "complete_moves"
	// OpAbortMoves removes joining owners.
	OpAbortMoves Op = "abort_moves"
	// OpPromote makes ready owners the primaries of partitions.
	OpPromote Op = "promote"
	// OpDropOwners removes ready owners without replacement.
	OpDropOwners Op = "drop_owners"
)

// Limits of the cluster settings. Config.Validate keeps a proposed init
// within them; Apply refuses an init beyond them, so that a corrupt log
// entry cannot make every node that replays it allocate without bound.
const (
	MaxPartitionCount    = 1 << 20
	MaxReplicationFactor = 16
)

// Move names a node and a partition; for OpBeginMoves also the copy source.
type Move struct {
	Partition int    `json:"partition"`
	Node      string `json:"node"`
	From      string `json:"from,omitempty"`
	// Reason says why the move began; default the command's Reason.
	Reason string `json:"reason,omitempty"`
	// Replaces is, for OpBeginMoves, the owner the joiner is meant to
	// replace ("" for an added owner); for OpCompleteMoves, the owner
	// released as the joiner becomes an owner ("" for none).
	Replaces string `json:"replaces,omitempty"`
	// Rule is, for OpBeginMoves, the placement rule that chose Node; it is
	// kept with the joiner and recorded in the partition's history.
	Rule string `json:"rule,omitempty"`
}

// Command is one change to the state.
type Command struct {
	Op Op `json:"op"`

	// OpInit.
	ClusterName       string `json:"cluster_name,omitempty"`
	PartitionCount    int    `json:"partition_count,omitempty"`
	ReplicationFactor int    `json:"replication_factor,omitempty"`

	// OpJoin.
	Node *Node `json:"node,omitempty"`

	// OpRemove, OpSetStatus, OpSetDraining.
	NodeID   string     `json:"node_id,omitempty"`
	Status   NodeStatus `json:"status,omitempty"`
	Draining bool       `json:"draining,omitempty"`

	// At is the proposer's clock (Unix milliseconds) for commands that
	// record a time (statuses, moves, and every owner change in a
	// partition's history), so that every node stores the same value.
	// Commands logged before it was set on every op carry 0: unknown.
	At int64 `json:"at,omitempty"`

	// OpBeginMoves, OpCompleteMoves, OpAbortMoves, OpPromote (Node
	// becomes primary), OpDropOwners.
	Moves []Move `json:"moves,omitempty"`

	// OpSetTable: the table replaces the current one only if the state is
	// still at BaseVersion.
	BaseVersion uint64 `json:"base_version,omitempty"`
	// Reason says why the table changes (join, leave, failure, rebalance,
	// drain); it is passed on to the application's events.
	Reason string     `json:"reason,omitempty"`
	Owners [][]string `json:"owners,omitempty"`
}

// Encode returns the command's log entry.
func (c Command) Encode() ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode %s command: %w", c.Op, err)
	}
	return append([]byte{formatV1}, b...), nil
}

// Decode parses a log entry written by Encode.
func Decode(b []byte) (Command, error) {
	var c Command
	if len(b) == 0 || b[0] != formatV1 {
		return c, fmt.Errorf("%w: unknown command format", ErrInvalid)
	}
	if err := json.Unmarshal(b[1:], &c); err != nil {
		return c, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return c, nil
}

// Apply applies c to s. It returns whether s changed (and its Version was
// incremented). On error s is unchanged.
func (s *State) Apply(c Command) (bool, error) {
	var changed bool
	var err error
	switch c.Op {
	case OpInit:
		changed, err = s.applyInit(c)
	case OpJoin:
		changed, err = s.applyJoin(c.Node)
	case OpRemove:
		changed, err = s.applyRemove(c.NodeID, c.At)
	case OpSetTable:
		changed, err = s.applySetTable(c.BaseVersion, c.Owners, c.Reason, c.At)
	case OpSetStatus:
		changed, err = s.applySetStatus(c.NodeID, c.Status, c.At)
	case OpSetDraining:
		changed, err = s.applySetDraining(c.NodeID, c.Draining)
	case OpBeginMoves:
		changed, err = s.applyBeginMoves(c.Moves, c.Reason, c.At)
	case OpCompleteMoves:
		changed, err = s.applyCompleteMoves(c.Moves, c.At)
	case OpAbortMoves:
		changed, err = s.applyAbortMoves(c.Moves)
	case OpPromote:
		changed, err = s.applyPromote(c.Moves, c.Reason, c.At)
	case OpDropOwners:
		changed, err = s.applyDropOwners(c.Moves, c.At)
	default:
		err = fmt.Errorf("%w: unknown op %q", ErrInvalid, c.Op)
	}
	if changed && err == nil {
		s.Version++
	}
	return changed, err
}

func (s *State) applyInit(c Command) (bool, error) {
	if s.Initialized() {
		return false, nil
	}
	if c.PartitionCount <= 0 || c.ReplicationFactor <= 0 {
		return false, fmt.Errorf("%w: init needs positive partition_count and replication_factor", ErrInvalid)
	}
	if c.PartitionCount > MaxPartitionCount || c.ReplicationFactor > MaxReplicationFactor {
		return false, fmt.Errorf("%w: init with partition_count %d and replication_factor %d: at most %d and %d", ErrInvalid, c.PartitionCount, c.ReplicationFactor, MaxPartitionCount, MaxReplicationFactor)
	}
	s.ClusterName = c.ClusterName
	s.PartitionCount = c.PartitionCount
	s.ReplicationFactor = c.ReplicationFactor
	s.Partitions = make([]Partition, c.PartitionCount)
	return true, nil
}

// CheckJoin reports whether n may join: nil when it is new, ErrConflict
// when it reuses another member's ID or address. already is true when the
// same node (ID and addresses) is a member.
func (s *State) CheckJoin(n *Node) (already bool, err error) {
	if n == nil || n.ID == "" || n.HTTPAddr == "" || n.RaftAddr == "" {
		return false, fmt.Errorf("%w: join needs id, http_addr and raft_addr", ErrInvalid)
	}
	if old, ok := s.Nodes[n.ID]; ok {
		if !old.sameIdentity(n) {
			return false, fmt.Errorf("%w: node id %q is taken by the member at %s", ErrConflict, n.ID, old.HTTPAddr)
		}
		return true, nil
	}
	for _, m := range s.Nodes {
		if m.HTTPAddr == n.HTTPAddr || m.RaftAddr == n.RaftAddr {
			return false, fmt.Errorf("%w: address of %q is taken by member %q", ErrConflict, n.ID, m.ID)
		}
	}
	return false, nil
}

func (s *State) applyJoin(n *Node) (bool, error) {
	already, err := s.CheckJoin(n)
	if err != nil {
		return false, err
	}
	if already {
		old := s.Nodes[n.ID]
		if old.sameAttrs(n) && old.Status == StatusAlive {
			return false, nil
		}
	}
	c := n.Clone()
	c.Status = StatusAlive
	if c.Weight <= 0 {
		c.Weight = 1
	}
	s.Nodes[c.ID] = c
	return true, nil
}

func (s *State) applyRemove(id string, at int64) (bool, error) {
	if _, ok := s.Nodes[id]; !ok {
		return false, nil
	}
	delete(s.Nodes, id)
	for i := range s.Partitions {
		p := &s.Partitions[i]
		if k := p.JoiningIndex(id); k >= 0 {
			p.Joining = slices.Delete(slices.Clone(p.Joining), k, k+1)
		}
		j := slices.Index(p.Owners, id)
		if j < 0 {
			continue
		}
		before := p.Owners
		p.Owners = slices.Delete(slices.Clone(p.Owners), j, j+1)
		if j == 0 {
			p.Epoch++
		}
		s.record(i, before, change{reason: "leave", at: at})
	}
	return true, nil
}

func (s *State) applySetStatus(id string, st NodeStatus, at int64) (bool, error) {
	n, ok := s.Nodes[id]
	if !ok {
		return false, fmt.Errorf("%w: %q", ErrUnknownNode, id)
	}
	switch st {
	case StatusAlive, StatusSuspect, StatusDead:
	default:
		return false, fmt.Errorf("%w: unknown status %q", ErrInvalid, st)
	}
	if n.Status == st {
		return false, nil
	}
	n.Status = st
	n.StatusSince = at
	return true, nil
}

func (s *State) applySetTable(base uint64, owners [][]string, reason string, at int64) (bool, error) {
	if base != s.Version {
		return false, fmt.Errorf("%w: table computed at version %d, state is at %d", ErrStaleVersion, base, s.Version)
	}
	if len(owners) != s.PartitionCount {
		return false, fmt.Errorf("%w: table has %d partitions, cluster has %d", ErrInvalid, len(owners), s.PartitionCount)
	}
	changed := false
	for i, o := range owners {
		seen := make(map[string]bool, len(o))
		for _, id := range o {
			if _, ok := s.Nodes[id]; !ok {
				return false, fmt.Errorf("%w: partition %d owner %q", ErrUnknownNode, i, id)
			}
			if seen[id] {
				return false, fmt.Errorf("%w: partition %d lists %q twice", ErrInvalid, i, id)
			}
			seen[id] = true
		}
		if !slices.Equal(o, s.Partitions[i].Owners) {
			changed = true
		}
	}
	if !changed {
		return false, nil
	}
	if reason == "" {
		reason = "rebalance"
	}
	for i, o := range owners {
		p := &s.Partitions[i]
		if p.Primary() != primaryOf(o) {
			p.Epoch++
		}
		before := p.Owners
		p.Owners = slices.Clone(o)
		s.record(i, before, change{reason: reason, at: at})
		p.Joining = slices.DeleteFunc(slices.Clone(p.Joining), func(j Joining) bool { return slices.Contains(o, j.Node) })
	}
	return true, nil
}

func primaryOf(owners []string) string {
	if len(owners) == 0 {
		return ""
	}
	return owners[0]
}
