package state

import (
	"fmt"
	"slices"
)

// Moves change one partition at a time and are validated as a whole: a
// command with one invalid move changes nothing.

func (s *State) partition(i int) (*Partition, error) {
	if i < 0 || i >= len(s.Partitions) {
		return nil, fmt.Errorf("%w: partition %d out of range", ErrInvalid, i)
	}
	return &s.Partitions[i], nil
}

func (s *State) member(id string) error {
	if _, ok := s.Nodes[id]; !ok {
		return fmt.Errorf("%w: %q", ErrUnknownNode, id)
	}
	return nil
}

func (s *State) applySetDraining(id string, draining bool) (bool, error) {
	n, ok := s.Nodes[id]
	if !ok {
		return false, fmt.Errorf("%w: %q", ErrUnknownNode, id)
	}
	if n.Draining == draining {
		return false, nil
	}
	n.Draining = draining
	return true, nil
}

// applyBeginMoves adds each move's node as a joining owner of its
// partition, copying from From. A node that already owns or is joining the
// partition is refused.
func (s *State) applyBeginMoves(moves []Move, reason string, at int64) (bool, error) {
	if len(moves) == 0 {
		return false, nil
	}
	seen := map[[2]string]bool{}
	for _, m := range moves {
		p, err := s.partition(m.Partition)
		if err != nil {
			return false, err
		}
		if err := s.member(m.Node); err != nil {
			return false, err
		}
		key := [2]string{fmt.Sprint(m.Partition), m.Node}
		if seen[key] || p.IsOwner(m.Node) || p.JoiningIndex(m.Node) >= 0 {
			return false, fmt.Errorf("%w: %q already owns or joins partition %d", ErrConflict, m.Node, m.Partition)
		}
		seen[key] = true
		if m.From != "" && !p.IsOwner(m.From) {
			return false, fmt.Errorf("%w: copy source %q does not own partition %d", ErrInvalid, m.From, m.Partition)
		}
	}
	for _, m := range moves {
		p := &s.Partitions[m.Partition]
		r := m.Reason
		if r == "" {
			r = reason
		}
		p.Joining = append(slices.Clone(p.Joining), Joining{Node: m.Node, From: m.From, Since: at, Reason: r, Replaces: m.Replaces, Rule: m.Rule})
	}
	return true, nil
}

// applyCompleteMoves makes each move's joining node an owner and, in the
// same change, releases the old owner m.Replaces (when it is one). The new
// owner becomes primary only if the partition had none. A move whose node
// is no longer joining (its handoff was aborted) is skipped: the outcome is
// the same on every node.
func (s *State) applyCompleteMoves(moves []Move, at int64) (bool, error) {
	for _, m := range moves {
		if _, err := s.partition(m.Partition); err != nil {
			return false, err
		}
		if m.Replaces == m.Node {
			return false, fmt.Errorf("%w: a move cannot release the node it adds", ErrInvalid)
		}
	}
	changed := false
	for _, m := range moves {
		p := &s.Partitions[m.Partition]
		k := p.JoiningIndex(m.Node)
		if k < 0 {
			continue
		}
		joiner := p.Joining[k]
		p.Joining = slices.Delete(slices.Clone(p.Joining), k, k+1)
		owners := slices.Clone(p.Owners)
		if j := slices.Index(owners, m.Replaces); m.Replaces != "" && j >= 0 {
			owners = slices.Delete(owners, j, j+1)
			if j == 0 {
				p.Epoch++
			}
		}
		if len(owners) == 0 {
			p.Epoch++
		}
		before := p.Owners
		p.Owners = append(owners, m.Node)
		reason := joiner.Reason
		if reason == "" {
			reason = "rebalance"
		}
		s.record(m.Partition, before, change{reason: reason, at: at, from: joiner.From, rule: joiner.Rule})
		changed = true
	}
	return changed, nil
}

func (s *State) applyAbortMoves(moves []Move) (bool, error) {
	for _, m := range moves {
		p, err := s.partition(m.Partition)
		if err != nil {
			return false, err
		}
		if p.JoiningIndex(m.Node) < 0 {
			return false, fmt.Errorf("%w: %q is not joining partition %d", ErrConflict, m.Node, m.Partition)
		}
	}
	for _, m := range moves {
		p := &s.Partitions[m.Partition]
		k := p.JoiningIndex(m.Node)
		p.Joining = slices.Delete(slices.Clone(p.Joining), k, k+1)
	}
	return len(moves) > 0, nil
}

// applyPromote makes each move's node, a ready owner, the primary of its
// partition; the old primary stays a replica. Each change of primary
// increases the partition's epoch.
func (s *State) applyPromote(moves []Move, reason string, at int64) (bool, error) {
	for _, m := range moves {
		p, err := s.partition(m.Partition)
		if err != nil {
			return false, err
		}
		if !p.IsOwner(m.Node) {
			return false, fmt.Errorf("%w: %q is not a ready owner of partition %d", ErrConflict, m.Node, m.Partition)
		}
	}
	changed := false
	for _, m := range moves {
		p := &s.Partitions[m.Partition]
		if p.Primary() == m.Node {
			continue
		}
		j := slices.Index(p.Owners, m.Node)
		owners := make([]string, 0, len(p.Owners))
		owners = append(owners, m.Node)
		owners = append(owners, p.Owners[:j]...)
		owners = append(owners, p.Owners[j+1:]...)
		before := p.Owners
		p.Owners = owners
		p.Epoch++
		r := reason
		if m.Reason != "" {
			r = m.Reason
		}
		if r == "" {
			r = "rebalance"
		}
		s.record(m.Partition, before, change{reason: r, at: at})
		changed = true
	}
	return changed, nil
}

// applyDropOwners removes ready owners. Dropping a primary promotes the
// next owner and increases the epoch.
func (s *State) applyDropOwners(moves []Move, at int64) (bool, error) {
	for _, m := range moves {
		p, err := s.partition(m.Partition)
		if err != nil {
			return false, err
		}
		if !p.IsOwner(m.Node) {
			return false, fmt.Errorf("%w: %q is not an owner of partition %d", ErrConflict, m.Node, m.Partition)
		}
	}
	for _, m := range moves {
		p := &s.Partitions[m.Partition]
		j := slices.Index(p.Owners, m.Node)
		if j < 0 { // listed twice
			continue
		}
		before := p.Owners
		p.Owners = slices.Delete(slices.Clone(p.Owners), j, j+1)
		if j == 0 {
			p.Epoch++
		}
		s.record(m.Partition, before, change{reason: s.DropReason(m), at: at})
	}
	return len(moves) > 0, nil
}
