package clusterkit

import (
	"fmt"
	"strconv"
	"testing"

	"clusterkit.dev/clusterkit/internal/state"
)

// staticCK returns a ClusterKit that is not started but holds a map of
// nodes nodes and partitions partitions (RF 3, round-robin), as node-0.
func staticCK(tb testing.TB, partitions, nodes int) *ClusterKit {
	tb.Helper()
	st := state.New()
	apply := func(c state.Command) {
		if _, err := st.Apply(c); err != nil {
			tb.Fatal(err)
		}
	}
	apply(state.Command{Op: state.OpInit, ClusterName: "bench", PartitionCount: partitions, ReplicationFactor: 3})
	for i := 0; i < nodes; i++ {
		id := "node-" + strconv.Itoa(i)
		apply(state.Command{Op: state.OpJoin, Node: &state.Node{ID: id, HTTPAddr: id + ":8080", RaftAddr: id + ":9080"}})
	}
	owners := make([][]string, partitions)
	for p := range owners {
		for r := 0; r < 3; r++ {
			owners[p] = append(owners[p], "node-"+strconv.Itoa((p+r)%nodes))
		}
	}
	apply(state.Command{Op: state.OpSetTable, BaseVersion: st.Version, Owners: owners})
	ck, err := NewClusterKit(Options{NodeID: "node-0", HTTPAddr: "127.0.0.1:1"})
	if err != nil {
		tb.Fatal(err)
	}
	ck.view.Store(newView(st, ReasonInitial))
	return ck
}

func TestHotPathDoesNotAllocate(t *testing.T) {
	ck := staticCK(t, 271, 10)
	keys := make([]string, 64)
	for i := range keys {
		keys[i] = fmt.Sprintf("user:%d", i)
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		p, err := ck.GetPartition(keys[i%len(keys)])
		if err != nil || ck.GetPrimary(p) == nil {
			t.Fatal("no partition")
		}
		_ = ck.IsPrimary(p)
		_ = ck.IsReplica(p)
		i++
	})
	if allocs != 0 {
		t.Fatalf("GetPartition+GetPrimary+IsPrimary+IsReplica: %.1f allocs/op, want 0", allocs)
	}
}

func TestCoreMethodsAnswerFromTheMap(t *testing.T) {
	ck := staticCK(t, 16, 4)
	p, err := ck.GetPartition("user:123")
	if err != nil {
		t.Fatal(err)
	}
	// partition-12 with round-robin owners node-0, node-1, node-2.
	if p.ID != "partition-12" || p.PrimaryNode != "node-0" {
		t.Fatalf("partition %+v", p)
	}
	if !ck.IsPrimary(p) || ck.IsReplica(p) || ck.GetPrimary(p).ID != "node-0" {
		t.Fatal("node-0 must be primary, not replica")
	}
	reps := ck.GetReplicas(p)
	if len(reps) != 2 || reps[0].ID != "node-1" || reps[1].ID != "node-2" || reps[0].IP != "node-1:8080" {
		t.Fatalf("replicas %+v", reps)
	}
	reps[0].ID = "mutated"
	if ck.GetReplicas(p)[0].ID != "node-1" {
		t.Fatal("GetReplicas returned shared memory")
	}
	if nodes := ck.GetNodes(p); len(nodes) != 3 || nodes[0].ID != "node-0" {
		t.Fatalf("GetNodes %+v", nodes)
	}
	p2, _ := ck.GetPartition("session:abc") // partition-2: node-2, node-3, node-0
	if ck.IsPrimary(p2) || !ck.IsReplica(p2) {
		t.Fatal("node-0 must be a replica of partition-2")
	}
	if ck.GetMyNodeID() != "node-0" {
		t.Fatal("GetMyNodeID")
	}
	if ck.GetPrimary(nil) != nil || ck.GetReplicas(&Partition{Index: 99}) != nil || ck.IsPrimary(&Partition{Index: -1}) {
		t.Fatal("nil or foreign partitions must answer nil/false")
	}
}

func TestGetPartitionBeforeAMap(t *testing.T) {
	ck, err := NewClusterKit(Options{NodeID: "n", HTTPAddr: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ck.GetPartition("k"); err != ErrNoPartitionMap {
		t.Fatalf("err %v, want ErrNoPartitionMap", err)
	}
}

func BenchmarkGetPartition(b *testing.B) {
	for _, p := range []int{16, 271, 4096} {
		b.Run(fmt.Sprintf("P=%d", p), func(b *testing.B) {
			ck := staticCK(b, p, 10)
			keys := make([]string, 1024)
			for i := range keys {
				keys[i] = fmt.Sprintf("user:%08d", i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := ck.GetPartition(keys[i&1023]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRoute(b *testing.B) {
	ck := staticCK(b, 271, 10)
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("user:%08d", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p, _ := ck.GetPartition(keys[i&1023])
		if ck.GetPrimary(p) == nil || ck.IsPrimary(p) && ck.IsReplica(p) {
			b.Fatal("bad route")
		}
	}
}

func BenchmarkGetPartitionParallel(b *testing.B) {
	ck := staticCK(b, 271, 10)
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("user:%08d", i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := ck.GetPartition(keys[i&1023]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
