package state

import (
	"bytes"
	"slices"
	"testing"
)

// fuzzBase returns a state built by real commands: three nodes, a table,
// one node joining a partition, one draining. fresh returns an empty state
// instead, so that init and joins before init are reached too.
func fuzzBase(t testing.TB, fresh bool) *State {
	t.Helper()
	if fresh {
		return New()
	}
	s := initState(t, "a", "b", "c")
	mustApply(t, s, Command{Op: OpSetTable, BaseVersion: s.Version, Owners: [][]string{{"a", "b"}, {"b", "c"}, {"c", "a"}, {"a"}}})
	mustApply(t, s, Command{Op: OpJoin, Node: node("d")})
	mustApply(t, s, Command{Op: OpBeginMoves, Reason: "join", At: 5, Moves: []Move{{Partition: 3, Node: "d", From: "a"}}})
	mustApply(t, s, Command{Op: OpSetDraining, NodeID: "c", Draining: true})
	return s
}

// fuzzSeeds are log entries written by Encode for every op, some valid on
// fuzzBase's state and some refused.
func fuzzSeeds(f *testing.F) [][]byte {
	f.Helper()
	cmds := []Command{
		{Op: OpInit, ClusterName: "c", PartitionCount: 8, ReplicationFactor: 3},
		{Op: OpJoin, Node: &Node{ID: "e", HTTPAddr: "e:1", RaftAddr: "e:2", Zone: "z1", Weight: 2, Meta: map[string]string{"k": "v"}}},
		{Op: OpJoin, Node: &Node{ID: "a", HTTPAddr: "elsewhere:1", RaftAddr: "a:9080"}},
		{Op: OpRemove, NodeID: "a"},
		{Op: OpSetTable, BaseVersion: 9, Reason: "rebalance", Owners: [][]string{{"b", "a"}, {"c"}, {"a", "c"}, {"d", "b"}}},
		{Op: OpSetStatus, NodeID: "b", Status: StatusSuspect, At: 7},
		{Op: OpSetDraining, NodeID: "c"},
		{Op: OpBeginMoves, At: 9, Moves: []Move{{Partition: 1, Node: "a", From: "b", Replaces: "c"}}},
		{Op: OpCompleteMoves, Moves: []Move{{Partition: 3, Node: "d", Replaces: "a"}}},
		{Op: OpAbortMoves, Moves: []Move{{Partition: 3, Node: "d"}}},
		{Op: OpPromote, Moves: []Move{{Partition: 0, Node: "b"}}},
		{Op: OpDropOwners, Moves: []Move{{Partition: 2, Node: "c"}, {Partition: 2, Node: "c"}}},
	}
	out := make([][]byte, 0, len(cmds))
	for _, c := range cmds {
		b, err := c.Encode()
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzDecodeCommand checks that any log entry either is refused or decodes
// to a command that encodes to an entry decoding to the same command.
func FuzzDecodeCommand(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		f.Add(b)
	}
	f.Add([]byte(`{"op":"join"}`))
	f.Add([]byte{formatV1})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Decode(b)
		if err != nil {
			return
		}
		enc, err := c.Encode()
		if err != nil {
			t.Fatalf("a decoded command does not encode: %v", err)
		}
		c2, err := Decode(enc)
		if err != nil {
			t.Fatalf("an encoded command does not decode: %v", err)
		}
		enc2, err := c2.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", enc, enc2)
		}
	})
}

// FuzzApplyCommand decodes two log entries and applies them in turn to a
// valid state. Apply must not panic; a refused or no-op command leaves the
// state exactly as it was; a change increments the version by one and
// keeps the state's invariants.
func FuzzApplyCommand(f *testing.F) {
	seeds := fuzzSeeds(f)
	for i, b := range seeds {
		f.Add(false, b, seeds[(i+1)%len(seeds)])
	}
	f.Add(true, seeds[0], seeds[1])
	f.Fuzz(func(t *testing.T, fresh bool, first, second []byte) {
		s := fuzzBase(t, fresh)
		for _, b := range [][]byte{first, second} {
			c, err := Decode(b)
			if err != nil {
				continue
			}
			want, err := s.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			before := s.Clone()
			changed, err := s.Apply(c)
			if err != nil && changed {
				t.Fatalf("%s: refused (%v) but reports a change", c.Op, err)
			}
			if !changed {
				got, err := s.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%s: no change reported (err %v) but the state changed:\nbefore %s\nafter  %s", c.Op, err, want, got)
				}
				continue
			}
			if s.Version != before.Version+1 {
				t.Fatalf("%s: version %d after %d, want one more", c.Op, s.Version, before.Version)
			}
			checkInvariants(t, before, s)
		}
	})
}

// checkInvariants checks what Apply keeps true of every state it builds,
// and what it keeps true from before to after one change.
func checkInvariants(t *testing.T, before, s *State) {
	t.Helper()
	checkStructure(t, s)
	addrs := map[string]string{}
	for id, n := range s.Nodes {
		if n.ID == "" || n.HTTPAddr == "" || n.RaftAddr == "" {
			t.Fatalf("node %q: %+v", id, n)
		}
		if n.Weight <= 0 {
			t.Fatalf("node %q has weight %d", id, n.Weight)
		}
		switch n.Status {
		case StatusAlive, StatusSuspect, StatusDead:
		default:
			t.Fatalf("node %q has status %q", id, n.Status)
		}
		for _, a := range []string{"http " + n.HTTPAddr, "raft " + n.RaftAddr} {
			if other, ok := addrs[a]; ok {
				t.Fatalf("nodes %q and %q share %s", id, other, a)
			}
			addrs[a] = id
		}
	}
	if before.Initialized() && (s.ClusterName != before.ClusterName || s.PartitionCount != before.PartitionCount || s.ReplicationFactor != before.ReplicationFactor) {
		t.Fatalf("cluster settings changed after init")
	}
	if s.Initialized() && s.ReplicationFactor <= 0 {
		t.Fatalf("initialised with replication factor %d", s.ReplicationFactor)
	}
	for i, p := range s.Partitions {
		if len(p.History) > MaxHistory {
			t.Fatalf("partition %d keeps %d changes, at most %d", i, len(p.History), MaxHistory)
		}
		if i >= len(before.Partitions) {
			continue
		}
		old := before.Partitions[i]
		if !slices.Equal(p.Owners, old.Owners) {
			h := p.History
			if len(h) == 0 || h[len(h)-1].Version != s.Version || !slices.Equal(h[len(h)-1].Owners, p.Owners) || h[len(h)-1].Epoch != p.Epoch {
				t.Fatalf("partition %d owners %v -> %v at version %d, history %+v", i, old.Owners, p.Owners, s.Version, h)
			}
		} else if !slices.EqualFunc(p.History, old.History, func(a, b Change) bool { return a.Version == b.Version }) {
			t.Fatalf("partition %d owners unchanged but history %+v -> %+v", i, old.History, p.History)
		}
		if p.Epoch < old.Epoch {
			t.Fatalf("partition %d epoch went from %d to %d", i, old.Epoch, p.Epoch)
		}
		if p.Primary() != old.Primary() && p.Epoch == old.Epoch {
			t.Fatalf("partition %d primary %q became %q at the same epoch %d", i, old.Primary(), p.Primary(), p.Epoch)
		}
	}
}

// FuzzUnmarshalState checks that any snapshot is either refused or
// decodes to a state of sound structure (checkStructure) that marshals
// back to itself and takes any command without panicking.
func FuzzUnmarshalState(f *testing.F) {
	seeds := fuzzSeeds(f)
	for i, fresh := range []bool{false, true} {
		b, err := fuzzBase(f, fresh).Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, seeds[i+3])
	}
	f.Add([]byte(`{"nodes":{"a":null}}`), seeds[1])
	f.Add([]byte(`{"partition_count":4,"replication_factor":2,"nodes":{},"partitions":[]}`), seeds[4])
	f.Fuzz(func(t *testing.T, snap, cmd []byte) {
		s, err := Unmarshal(snap)
		if err != nil {
			return
		}
		checkStructure(t, s)
		b, err := s.Marshal()
		if err != nil {
			t.Fatalf("a restored state does not marshal: %v", err)
		}
		again, err := Unmarshal(b)
		if err != nil {
			t.Fatalf("a marshalled state is refused: %v\n%s", err, b)
		}
		if b2, _ := again.Marshal(); !bytes.Equal(b, b2) {
			t.Fatalf("snapshot round trip differs:\n%s\n%s", b, b2)
		}
		c, err := Decode(cmd)
		if err != nil {
			return
		}
		if _, err := s.Apply(c); err == nil {
			checkStructure(t, s)
		}
	})
}

// checkStructure checks what every state, applied or restored, must hold
// for the code that reads it: a record per member under its ID, one
// partition per partition of the settings, owners and joiners that are
// distinct members.
func checkStructure(t *testing.T, s *State) {
	t.Helper()
	if s.PartitionCount < 0 || s.PartitionCount > MaxPartitionCount || len(s.Partitions) != s.PartitionCount {
		t.Fatalf("%d partitions of partition count %d", len(s.Partitions), s.PartitionCount)
	}
	for id, n := range s.Nodes {
		if n == nil || n.ID != id {
			t.Fatalf("node %q: %+v", id, n)
		}
	}
	for i, p := range s.Partitions {
		seen := map[string]bool{}
		for _, id := range p.Owners {
			if _, ok := s.Nodes[id]; !ok {
				t.Fatalf("partition %d owner %q is not a member", i, id)
			}
			if seen[id] {
				t.Fatalf("partition %d owners %v repeat %q", i, p.Owners, id)
			}
			seen[id] = true
		}
		for _, j := range p.Joining {
			if _, ok := s.Nodes[j.Node]; !ok {
				t.Fatalf("partition %d joiner %q is not a member", i, j.Node)
			}
			if seen[j.Node] {
				t.Fatalf("partition %d lists %q twice among owners %v and joiners %+v", i, j.Node, p.Owners, p.Joining)
			}
			seen[j.Node] = true
		}
	}
}
