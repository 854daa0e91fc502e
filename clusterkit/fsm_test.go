package clusterkit

import (
	"io"
	"reflect"
	"testing"

	"github.com/hashicorp/raft"

	"clusterkit.dev/clusterkit/internal/state"
)

// The FSM's snapshot, written to raft's real file snapshot store and
// restored into a fresh FSM, gives the same state and the same view.
func TestFSMSnapshotRestore(t *testing.T) {
	src := newFSM(func(*view) {})
	// Build the source state through Apply, as raft would.
	for i, c := range []state.Command{
		{Op: state.OpInit, ClusterName: "c", PartitionCount: 4, ReplicationFactor: 2},
		{Op: state.OpJoin, Node: &state.Node{ID: "a", HTTPAddr: "a:1", RaftAddr: "a:2", Meta: map[string]string{"kv": "a:7"}}},
		{Op: state.OpJoin, Node: &state.Node{ID: "b", HTTPAddr: "b:1", RaftAddr: "b:2"}},
		{Op: state.OpJoin, Node: &state.Node{ID: "c", HTTPAddr: "c:1", RaftAddr: "c:2"}},
		{Op: state.OpSetTable, BaseVersion: 4, Owners: [][]string{{"a", "b"}, {"b", "a"}, {"a", "b"}, {"b", "a"}}},
		{Op: state.OpBeginMoves, Moves: []state.Move{{Partition: 1, Node: "c", From: "b", Replaces: "a"}}},
	} {
		b, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if res := src.Apply(&raft.Log{Index: uint64(i + 1), Data: b}).(applyResult); res.err != nil {
			t.Fatalf("apply %s: %v", c.Op, res.err)
		}
	}
	store, err := raft.NewFileSnapshotStore(t.TempDir(), 1, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink, err := store.Create(raft.SnapshotVersionMax, 6, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	metas, err := store.List()
	if err != nil || len(metas) != 1 {
		t.Fatalf("snapshots %v, %v", metas, err)
	}
	_, rc, err := store.Open(metas[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var published *view
	dst := newFSM(func(v *view) { published = v })
	if err := dst.Restore(rc); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(dst.st, src.st) {
		t.Fatalf("restored state differs:\n got %+v\nwant %+v", dst.st, src.st)
	}
	if published == nil || published.version != 6 || published.reason != ReasonRestore ||
		published.partitions[1].JoiningNodes[0] != "c" || published.nodes["a"].Meta["kv"] != "a:7" {
		t.Fatalf("restored view: %+v", published)
	}
}
