package state

import (
	"errors"
	"reflect"
	"testing"
)

func node(id string) *Node {
	return &Node{ID: id, Name: id, HTTPAddr: id + ":8080", RaftAddr: id + ":9080", Weight: 1}
}

func mustApply(t testing.TB, s *State, c Command) bool {
	t.Helper()
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	dc, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	changed, err := s.Apply(dc)
	if err != nil {
		t.Fatalf("apply %s: %v", c.Op, err)
	}
	return changed
}

func initState(t testing.TB, ids ...string) *State {
	t.Helper()
	s := New()
	mustApply(t, s, Command{Op: OpInit, ClusterName: "c", PartitionCount: 4, ReplicationFactor: 2})
	for _, id := range ids {
		mustApply(t, s, Command{Op: OpJoin, Node: node(id)})
	}
	return s
}

func TestInitAppliesOnce(t *testing.T) {
	s := initState(t)
	if s.Version != 1 || s.PartitionCount != 4 || len(s.Partitions) != 4 {
		t.Fatalf("after init: %+v", s)
	}
	if mustApply(t, s, Command{Op: OpInit, ClusterName: "other", PartitionCount: 8, ReplicationFactor: 3}) {
		t.Fatal("second init changed the state")
	}
	if s.PartitionCount != 4 || s.ClusterName != "c" || s.Version != 1 {
		t.Fatalf("second init altered settings: %+v", s)
	}
}

func TestJoinIsIdempotentAndRefusesConflicts(t *testing.T) {
	s := initState(t, "a")
	v := s.Version
	if mustApply(t, s, Command{Op: OpJoin, Node: node("a")}) || s.Version != v {
		t.Fatal("the same join again changed the state")
	}
	taken := node("a")
	taken.HTTPAddr = "elsewhere:1"
	if _, err := s.Apply(Command{Op: OpJoin, Node: taken}); !errors.Is(err, ErrConflict) {
		t.Fatalf("join reusing an ID at another address: err %v, want ErrConflict", err)
	}
	addr := node("b")
	addr.RaftAddr = "a:9080"
	if _, err := s.Apply(Command{Op: OpJoin, Node: addr}); !errors.Is(err, ErrConflict) {
		t.Fatalf("join reusing a raft address: err %v, want ErrConflict", err)
	}
	if s.Version != v || len(s.Nodes) != 1 {
		t.Fatalf("refused joins changed the state: version %d nodes %d", s.Version, len(s.Nodes))
	}
}

func TestSetTableChecksVersionOwnersAndBumpsEpochs(t *testing.T) {
	s := initState(t, "a", "b", "c")
	table := [][]string{{"a", "b"}, {"b", "c"}, {"c", "a"}, {"a", "c"}}
	mustApply(t, s, Command{Op: OpSetTable, BaseVersion: s.Version, Owners: table})
	for i, p := range s.Partitions {
		if p.Epoch != 1 || !reflect.DeepEqual(p.Owners, table[i]) {
			t.Fatalf("partition %d = %+v", i, p)
		}
	}
	v := s.Version
	for name, c := range map[string]Command{
		"stale":     {Op: OpSetTable, BaseVersion: v - 1, Owners: table},
		"unknown":   {Op: OpSetTable, BaseVersion: v, Owners: [][]string{{"x"}, {"a"}, {"a"}, {"a"}}},
		"duplicate": {Op: OpSetTable, BaseVersion: v, Owners: [][]string{{"a", "a"}, {"a"}, {"a"}, {"a"}}},
		"short":     {Op: OpSetTable, BaseVersion: v, Owners: [][]string{{"a"}}},
	} {
		if _, err := s.Apply(c); err == nil {
			t.Errorf("%s table accepted", name)
		}
	}
	if s.Version != v {
		t.Fatalf("refused tables changed the version")
	}
	// Swap replicas only: no primary change, no epoch change.
	next := [][]string{{"a", "c"}, {"b", "c"}, {"c", "a"}, {"c", "a"}}
	mustApply(t, s, Command{Op: OpSetTable, BaseVersion: s.Version, Owners: next})
	wantEpochs := []uint64{1, 1, 1, 2}
	for i, p := range s.Partitions {
		if p.Epoch != wantEpochs[i] {
			t.Errorf("partition %d epoch %d, want %d", i, p.Epoch, wantEpochs[i])
		}
	}
}

func TestRemovePromotesNextOwner(t *testing.T) {
	s := initState(t, "a", "b")
	mustApply(t, s, Command{Op: OpSetTable, BaseVersion: s.Version, Owners: [][]string{{"a", "b"}, {"b", "a"}, {"a", "b"}, {"b", "a"}}})
	mustApply(t, s, Command{Op: OpRemove, NodeID: "a"})
	for i, p := range s.Partitions {
		if !reflect.DeepEqual(p.Owners, []string{"b"}) {
			t.Errorf("partition %d owners %v", i, p.Owners)
		}
	}
	if s.Partitions[0].Epoch != 2 || s.Partitions[1].Epoch != 1 {
		t.Errorf("epochs %d %d: a removed primary must bump the epoch, a removed replica must not", s.Partitions[0].Epoch, s.Partitions[1].Epoch)
	}
	if _, ok := s.Nodes["a"]; ok {
		t.Error("a still a member")
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	s := initState(t, "a", "b")
	s.Nodes["a"].Meta = map[string]string{"kv": "a:7000"}
	mustApply(t, s, Command{Op: OpSetTable, BaseVersion: s.Version, Owners: [][]string{{"a", "b"}, {"b", "a"}, {"a", "b"}, {"b", "a"}}})
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, s)
	}
	c := s.Clone()
	c.Nodes["a"].Meta["kv"] = "changed"
	c.Partitions[0].Owners[0] = "b"
	if s.Nodes["a"].Meta["kv"] != "a:7000" || s.Partitions[0].Owners[0] != "a" {
		t.Fatal("Clone shares memory with the original")
	}
}

func TestDecodeRejectsUnknownFormat(t *testing.T) {
	if _, err := Decode([]byte(`{"op":"join"}`)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("err %v, want ErrInvalid", err)
	}
	if _, err := Decode(nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("err %v, want ErrInvalid", err)
	}
}

func TestInitRefusesSettingsBeyondLimits(t *testing.T) {
	for _, c := range []Command{
		{Op: OpInit, PartitionCount: MaxPartitionCount + 1, ReplicationFactor: 3},
		{Op: OpInit, PartitionCount: 1 << 40, ReplicationFactor: 3},
		{Op: OpInit, PartitionCount: 16, ReplicationFactor: MaxReplicationFactor + 1},
	} {
		s := New()
		if changed, err := s.Apply(c); !errors.Is(err, ErrInvalid) || changed || s.Initialized() {
			t.Errorf("init %d/%d: changed %v, err %v, want ErrInvalid and no change", c.PartitionCount, c.ReplicationFactor, changed, err)
		}
	}
}

func TestUnmarshalRefusesBrokenStructure(t *testing.T) {
	for name, snap := range map[string]string{
		"nil node":        `{"nodes":{"a":null}}`,
		"node elsewhere":  `{"nodes":{"a":{"id":"b","http_addr":"b:1","raft_addr":"b:2"}}}`,
		"few partitions":  `{"partition_count":4,"replication_factor":2,"nodes":{},"partitions":[{}]}`,
		"unknown owner":   `{"partition_count":1,"replication_factor":2,"nodes":{},"partitions":[{"owners":["ghost"]}]}`,
		"joining owner":   `{"partition_count":1,"replication_factor":2,"nodes":{"a":{"id":"a"}},"partitions":[{"owners":["a"],"joining":[{"node":"a"}]}]}`,
		"negative count":  `{"partition_count":-1,"nodes":{}}`,
		"repeated owners": `{"partition_count":1,"replication_factor":2,"nodes":{"a":{"id":"a"}},"partitions":[{"owners":["a","a"]}]}`,
	} {
		if _, err := Unmarshal([]byte(snap)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
