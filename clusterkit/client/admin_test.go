package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
	"clusterkit.dev/clusterkit/client"
)

// TestAdminAgainstCluster drives a real cluster through Admin: the map,
// a long-poll that sees a drain, the drain itself, history and plan, and
// refusals as *StatusError.
func TestAdminAgainstCluster(t *testing.T) {
	c := cktest.New(t, 4)
	c.WaitConverged()
	ctx := context.Background()
	ad := client.NewAdmin(c.Member(1).HTTPAddr())
	info, err := ad.Cluster(ctx)
	if err != nil || len(info.Nodes) != 4 {
		t.Fatalf("cluster: %v %+v", err, info)
	}
	if next, err := ad.WaitCluster(ctx, info.Version, 100*time.Millisecond); err != nil || next != nil {
		t.Fatalf("a long-poll of an unchanged map: %+v, %v", next, err)
	}
	plan, err := ad.Plan(ctx, clusterkit.PlanChange{Drain: []string{"node-4"}})
	if err != nil || plan.Copies == 0 {
		t.Fatalf("plan: %v %+v", err, plan)
	}
	done := make(chan *clusterkit.ClusterInfo, 1)
	go func() {
		next, _ := ad.WaitCluster(ctx, info.Version, 10*time.Second)
		done <- next
	}()
	if err := ad.Drain(ctx, "node-4", true); err != nil {
		t.Fatal(err)
	}
	if next := <-done; next == nil || next.Version <= info.Version {
		t.Fatalf("the long-poll did not return the drain's map: %+v", next)
	}
	if h, err := ad.NodeHistory(ctx, "node-4", 10); err != nil || h.Node != "node-4" {
		t.Fatalf("node history: %v %+v", err, h)
	}
	_, err = ad.Explain(ctx, 999)
	if client.StatusCode(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "partition") {
		t.Fatalf("explain of a partition out of range: %v", err)
	}
	if err := ad.Leave(ctx, "ghost"); client.StatusCode(err) != http.StatusNotFound {
		t.Fatalf("leave of an unknown node: %v", err)
	}
}

// TestAdminSendsToken checks that WithAdminToken puts the bearer token on every
// request, for a proxy in front of the cluster.
func TestAdminSendsToken(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"leader_id":"n1","term":3}`))
	}))
	defer srv.Close()
	ad := client.NewAdmin(srv.URL, client.WithAdminToken("s3cret"))
	l, err := ad.Leader(context.Background())
	if err != nil || l.Term != 3 {
		t.Fatalf("leader: %v %+v", err, l)
	}
	if err := ad.Drain(context.Background(), "n1", true); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "Bearer s3cret" || got[1] != "Bearer s3cret" {
		t.Fatalf("Authorization headers %q", got)
	}
}
