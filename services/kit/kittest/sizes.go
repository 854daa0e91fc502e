// Package kittest holds what the services' tests share: a cluster of real
// nodes with a service's server on each (Cluster), nodes as processes
// (Procs), the checks the services make of their nodes (partition sizes,
// metrics at zero, bad input refused, what a store holds), the writes a
// test keeps on while the cluster changes (StartWriters), and the
// throughput benchmarks' runner (Throughput).
package kittest

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"clusterkit.dev/clusterkit"
)

// CheckPartitionSizes checks that the node of ck, whose HTTP API is at
// base ("http://host:port"), reports on GET /partitions/sizes a size for
// every partition it owns (primary or replica), and that it owns some:
// the sizes the leader's dry runs count in bytes.
func CheckPartitionSizes(t testing.TB, base string, ck *clusterkit.ClusterKit) {
	t.Helper()
	resp, err := http.Get(base + "/partitions/sizes")
	if err != nil {
		t.Fatalf("%s: GET /partitions/sizes: %v", ck.GetMyNodeID(), err)
	}
	defer resp.Body.Close()
	var got clusterkit.PartitionSizes
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&got) != nil {
		t.Fatalf("%s: GET /partitions/sizes: %s", ck.GetMyNodeID(), resp.Status)
	}
	id, owned := ck.GetMyNodeID(), 0
	for _, p := range ck.Partitions() {
		if p.PrimaryNode != id && !slices.Contains(p.ReplicaNodes, id) {
			continue
		}
		owned++
		if _, ok := got.Sizes[p.Index]; !ok {
			t.Errorf("%s: no size for its partition %d: %v", id, p.Index, got.Sizes)
		}
	}
	if owned == 0 {
		t.Fatalf("%s owns nothing", id)
	}
}
