package state

import (
	"errors"
	"reflect"
	"testing"
)

func tableState(t *testing.T) *State {
	t.Helper()
	s := initState(t, "a", "b", "c")
	mustApply(t, s, Command{Op: OpSetTable, BaseVersion: s.Version, Owners: [][]string{{"a", "b"}, {"b", "a"}, {"a", "b"}, {"b", "a"}}})
	return s
}

func TestMakeBeforeBreakMove(t *testing.T) {
	s := tableState(t)
	mustApply(t, s, Command{Op: OpBeginMoves, Moves: []Move{{Partition: 0, Node: "c", From: "a", Replaces: "a"}}, Reason: "join", At: 42})
	p := s.Partitions[0]
	if !reflect.DeepEqual(p.Owners, []string{"a", "b"}) || len(p.Joining) != 1 || p.Joining[0] != (Joining{Node: "c", From: "a", Since: 42, Reason: "join", Replaces: "a"}) {
		t.Fatalf("after begin: %+v", p)
	}
	// Releasing the primary hands it to the next owner and bumps the epoch.
	mustApply(t, s, Command{Op: OpCompleteMoves, Moves: []Move{{Partition: 0, Node: "c", Replaces: "a"}}})
	p = s.Partitions[0]
	if !reflect.DeepEqual(p.Owners, []string{"b", "c"}) || len(p.Joining) != 0 || p.Epoch != 2 {
		t.Fatalf("after complete: %+v", p)
	}
	// Completing again is skipped and changes nothing.
	v := s.Version
	if changed, err := s.Apply(Command{Op: OpCompleteMoves, Moves: []Move{{Partition: 0, Node: "c"}}}); err != nil || changed || s.Version != v {
		t.Fatalf("second complete: changed %v, %v", changed, err)
	}
	if _, err := s.Apply(Command{Op: OpCompleteMoves, Moves: []Move{{Partition: 7, Node: "c"}}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("complete out of range: %v", err)
	}
}

func TestBeginMovesValidatesAsAWhole(t *testing.T) {
	s := tableState(t)
	v := s.Version
	for name, moves := range map[string][]Move{
		"owner":        {{Partition: 1, Node: "c", From: "b"}, {Partition: 0, Node: "a"}},
		"unknown node": {{Partition: 1, Node: "x"}},
		"bad source":   {{Partition: 1, Node: "c", From: "c"}},
		"range":        {{Partition: 9, Node: "c"}},
		"twice":        {{Partition: 1, Node: "c"}, {Partition: 1, Node: "c"}},
	} {
		if _, err := s.Apply(Command{Op: OpBeginMoves, Moves: moves}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if s.Version != v || len(s.Partitions[1].Joining) != 0 {
		t.Fatal("refused moves changed the state")
	}
}

func TestPromoteAndDropBumpEpochs(t *testing.T) {
	s := tableState(t)
	mustApply(t, s, Command{Op: OpPromote, Moves: []Move{{Partition: 0, Node: "b"}, {Partition: 1, Node: "b"}}})
	if got := s.Partitions[0]; !reflect.DeepEqual(got.Owners, []string{"b", "a"}) || got.Epoch != 2 {
		t.Fatalf("promoted: %+v", got)
	}
	if got := s.Partitions[1]; got.Epoch != 1 {
		t.Fatalf("promoting the current primary changed the epoch: %+v", got)
	}
	if _, err := s.Apply(Command{Op: OpPromote, Moves: []Move{{Partition: 2, Node: "c"}}}); !errors.Is(err, ErrConflict) {
		t.Fatalf("promoting a non-owner: %v", err)
	}
	mustApply(t, s, Command{Op: OpDropOwners, Moves: []Move{{Partition: 2, Node: "a"}}})
	if got := s.Partitions[2]; !reflect.DeepEqual(got.Owners, []string{"b"}) || got.Epoch != 2 {
		t.Fatalf("dropped primary: %+v", got)
	}
}

func TestRemoveDropsJoiningEntries(t *testing.T) {
	s := tableState(t)
	mustApply(t, s, Command{Op: OpBeginMoves, Moves: []Move{{Partition: 0, Node: "c", From: "a"}}})
	mustApply(t, s, Command{Op: OpRemove, NodeID: "c"})
	if len(s.Partitions[0].Joining) != 0 {
		t.Fatalf("joining entry of a removed node survived: %+v", s.Partitions[0])
	}
}

func TestStatusAndDraining(t *testing.T) {
	s := tableState(t)
	mustApply(t, s, Command{Op: OpSetStatus, NodeID: "a", Status: StatusDead, At: 7})
	if n := s.Nodes["a"]; n.Status != StatusDead || n.StatusSince != 7 {
		t.Fatalf("status: %+v", n)
	}
	mustApply(t, s, Command{Op: OpSetDraining, NodeID: "b", Draining: true})
	if !s.Nodes["b"].Draining {
		t.Fatal("not draining")
	}
	if mustApply(t, s, Command{Op: OpSetDraining, NodeID: "b", Draining: true}) {
		t.Fatal("draining twice changed the state")
	}
}
