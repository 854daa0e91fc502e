package clusterkit_test

import (
	"fmt"
	"net/http"
	"testing"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
)

// Options.Meta is replicated with the node and returned with every Node,
// on every node, through the API and over HTTP.
func TestMetaTravelsWithTheNode(t *testing.T) {
	c := cktest.New(t, 3, cktest.WithSetup(func(i int, o *clusterkit.Options) {
		o.Meta = map[string]string{"kv_addr": fmt.Sprintf("10.0.0.%d:7000", i+1)}
		o.Zone = fmt.Sprintf("zone-%d", i%2)
	}))
	c.WaitConverged()
	for _, m := range c.Running() {
		for i, o := range c.Members() {
			n := m.CK.Node(o.ID)
			if n == nil || n.Meta["kv_addr"] != fmt.Sprintf("10.0.0.%d:7000", i+1) || n.Zone != fmt.Sprintf("zone-%d", i%2) {
				t.Fatalf("%s sees %s as %+v", m.ID, o.ID, n)
			}
		}
		p, err := m.CK.GetPartition("user:1")
		if err != nil {
			t.Fatal(err)
		}
		if pr := m.CK.GetPrimary(p); pr.Meta["kv_addr"] == "" {
			t.Fatalf("GetPrimary lacks Meta: %+v", pr)
		}
	}
	var info clusterkit.ClusterInfo
	getJSON(t, c.Member(2).URL("/cluster"), http.StatusOK, &info)
	for _, n := range info.Nodes {
		if n.Meta["kv_addr"] == "" {
			t.Fatalf("/cluster node without meta: %+v", n)
		}
	}
}
