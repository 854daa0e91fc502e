package state

import (
	"reflect"
	"testing"
)

// TestHistoryRecordsEveryOwnerChange walks one partition through each op
// that changes owners and checks the entry each one records: version,
// time from the command, epoch, reason, owners, and what was added and
// removed.
func TestHistoryRecordsEveryOwnerChange(t *testing.T) {
	s := initState(t, "a", "b", "c")
	mustApply(t, s, Command{Op: OpSetTable, BaseVersion: s.Version, Reason: "initial", At: 100,
		Owners: [][]string{{"a", "b"}, {"b", "a"}, {"a", "b"}, {"b", "a"}}})
	mustApply(t, s, Command{Op: OpBeginMoves, Reason: "join", At: 200, Moves: []Move{{Partition: 0, Node: "c", From: "a", Replaces: "b", Rule: "rebalance"}}})
	mustApply(t, s, Command{Op: OpCompleteMoves, At: 300, Moves: []Move{{Partition: 0, Node: "c", Replaces: "b"}}})
	mustApply(t, s, Command{Op: OpPromote, Reason: "failure", At: 400, Moves: []Move{{Partition: 0, Node: "c"}}})
	mustApply(t, s, Command{Op: OpSetDraining, NodeID: "a", Draining: true})
	mustApply(t, s, Command{Op: OpDropOwners, At: 500, Moves: []Move{{Partition: 0, Node: "a"}}})
	mustApply(t, s, Command{Op: OpRemove, NodeID: "c", At: 600})

	got := s.Partitions[0].History
	want := []Change{
		{Version: 5, At: 100, Epoch: 1, Reason: "initial", Owners: []string{"a", "b"}, Added: []string{"a", "b"}},
		{Version: 7, At: 300, Epoch: 1, Reason: "join", Owners: []string{"a", "c"}, Added: []string{"c"}, Removed: []string{"b"}, From: "a", Rule: "rebalance"},
		{Version: 8, At: 400, Epoch: 2, Reason: "failure", Owners: []string{"c", "a"}, PrevPrimary: "a"},
		{Version: 10, At: 500, Epoch: 2, Reason: "drain", Owners: []string{"c"}, Removed: []string{"a"}},
		{Version: 11, At: 600, Epoch: 3, Reason: "leave", Owners: []string{}, Removed: []string{"c"}, PrevPrimary: "c"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("history:\n got %+v\nwant %+v", got, want)
	}
	// Partition 1 was not touched after the first table.
	if h := s.Partitions[1].History; len(h) != 1 || h[0].Version != 5 {
		t.Fatalf("partition 1 history %+v", h)
	}
}

// TestHistoryIsBounded checks that a partition keeps its last MaxHistory
// changes, oldest first, and that a clone taken before keeps its own.
func TestHistoryIsBounded(t *testing.T) {
	s := tableState(t)
	var clone *State
	for i := range 2 * MaxHistory {
		next := "b"
		if s.Partitions[0].Primary() == "b" {
			next = "a"
		}
		mustApply(t, s, Command{Op: OpPromote, Reason: "rebalance", At: int64(i), Moves: []Move{{Partition: 0, Node: next}}})
		if i == 2 {
			clone = s.Clone()
		}
	}
	h := s.Partitions[0].History
	if len(h) != MaxHistory {
		t.Fatalf("%d entries, want %d", len(h), MaxHistory)
	}
	for k := 1; k < len(h); k++ {
		if h[k].Version != h[k-1].Version+1 {
			t.Fatalf("entries out of order: %+v", h)
		}
	}
	if h[len(h)-1].Version != s.Version || h[len(h)-1].At != 2*MaxHistory-1 {
		t.Fatalf("last entry %+v, state at version %d", h[len(h)-1], s.Version)
	}
	if n := len(clone.Partitions[0].History); n != 4 {
		t.Fatalf("the clone's history changed under it: %d entries", n)
	}
}

// TestHistorySnapshot checks that history survives a snapshot and that a
// snapshot written before history existed restores with none.
func TestHistorySnapshot(t *testing.T) {
	s := tableState(t)
	mustApply(t, s, Command{Op: OpPromote, Reason: "rebalance", At: 7, Moves: []Move{{Partition: 0, Node: "b"}}})
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Partitions[0].History, s.Partitions[0].History) {
		t.Fatalf("history after restore %+v, want %+v", back.Partitions[0].History, s.Partitions[0].History)
	}
	old := `{"cluster_name":"c","partition_count":1,"replication_factor":1,"version":3,` +
		`"nodes":{"a":{"id":"a","http_addr":"a:1","raft_addr":"a:2","weight":1,"status":"alive"}},` +
		`"partitions":[{"owners":["a"],"epoch":1}]}`
	st, err := Unmarshal([]byte(old))
	if err != nil {
		t.Fatalf("a snapshot without history: %v", err)
	}
	if st.Partitions[0].History != nil {
		t.Fatalf("history from nowhere: %+v", st.Partitions[0].History)
	}
	mustApply(t, st, Command{Op: OpRemove, NodeID: "a", At: 9})
	if h := st.Partitions[0].History; len(h) != 1 || h[0].Reason != "leave" || h[0].Version != 4 {
		t.Fatalf("history after the first change %+v", h)
	}
}
