package faults

import (
	"slices"
	"testing"

	"clusterkit.dev/clusterkit"
)

func TestFaultRecordSortsPartitionsByWhatTheTargetsHeld(t *testing.T) {
	m := &clusterkit.ClusterInfo{Version: 7, PartitionCount: 4, Partitions: []clusterkit.Partition{
		{Index: 0, PrimaryNode: "a", ReplicaNodes: []string{"b", "c"}}, // led, two owners lost
		{Index: 1, PrimaryNode: "a", ReplicaNodes: []string{"c", "d"}}, // led, a majority left
		{Index: 2, PrimaryNode: "c", ReplicaNodes: []string{"a", "b"}}, // not led, two owners lost
		{Index: 3, PrimaryNode: "c", ReplicaNodes: []string{"d", "e"}, JoiningNodes: []string{"b"}},
	}}
	r := FaultRecord{Targets: []string{"a", "b"}}
	r.fromMap(m)
	if want := []int{0, 1, 2, 3}; !slices.Equal(r.Partitions, want) {
		t.Errorf("Partitions = %v, want %v", r.Partitions, want)
	}
	if want := []int{1}; !slices.Equal(r.Led, want) {
		t.Errorf("Led = %v, want %v: a partition left without a majority is promised nothing", r.Led, want)
	}
	if want := []int{0, 2}; !slices.Equal(r.NoQuorum, want) {
		t.Errorf("NoQuorum = %v, want %v", r.NoQuorum, want)
	}
	if want := []string{"c", "d", "e", "b"}; !slices.Equal(r.Owners[3], want) {
		t.Errorf("Owners[3] = %v, want %v (primary, replicas, joining)", r.Owners[3], want)
	}

	one := FaultRecord{Targets: []string{"a"}}
	one.fromMap(m)
	if want := []int{0, 1}; !slices.Equal(one.Led, want) || len(one.NoQuorum) != 0 {
		t.Errorf("one target: Led = %v, NoQuorum = %v; want %v and none", one.Led, one.NoQuorum, want)
	}
}
