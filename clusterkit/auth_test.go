package clusterkit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
	"clusterkit.dev/clusterkit/client"
)

const testToken = "a-cluster-token-for-tests"

func withToken(reads bool) cktest.Option {
	return cktest.WithSetup(func(_ int, o *clusterkit.Options) {
		o.ClusterToken, o.TokenForReads = testToken, reads
	})
}

// Every request that changes the cluster needs the token: without it or
// with a wrong one it gets 401 with a JSON error, is counted, and changes
// nothing. Reads stay open unless TokenForReads.
func TestClusterTokenGuardsEveryChange(t *testing.T) {
	c := cktest.New(t, 3, withToken(false))
	c.WaitConverged()
	m := c.Member(1)
	version := m.CK.Version()
	join := fmt.Sprintf(`{"id":"intruder","http_addr":"127.0.0.1:1","raft_addr":%q,"weight":1}`, cktest.FreeAddr(t))
	changes := []struct{ path, body string }{
		{"/cluster/join", join},
		{"/cluster/leave", `{"id":"node-1"}`},
		{"/cluster/drain", `{"id":"node-1"}`},
		{"/partitions/ready", `{"node":"node-1","partitions":[0]}`},
		{"/cluster/formation", `{"founder":"intruder"}`},
	}
	for _, tc := range changes {
		for _, auth := range []string{"", "Bearer wrong-token-of-enough-length", "Basic " + testToken, testToken} {
			resp, body := do(t, "POST", m.URL(tc.path), tc.body, map[string]string{"Authorization": auth})
			var e clusterkit.ErrorBody
			if resp.StatusCode != 401 || json.Unmarshal(body, &e) != nil || e.Error == "" {
				t.Errorf("POST %s with Authorization %q: %d %s, want 401 with a JSON error", tc.path, auth, resp.StatusCode, body)
			}
		}
	}
	time.Sleep(200 * time.Millisecond)
	for _, o := range c.Running() {
		if v := o.CK.Version(); v != version {
			t.Errorf("%s: map version %d after refused requests, want %d", o.ID, v, version)
		}
		if n := len(o.CK.Nodes()); n != 3 {
			t.Errorf("%s: %d members after refused requests, want 3", o.ID, n)
		}
	}
	metrics := string(getBody(t, m.URL("/metrics"), 200))
	if want := `clusterkit_unauthorized_requests_total{route="/cluster/join"} 4`; !strings.Contains(metrics, want) {
		t.Errorf("/metrics lacks %q", want)
	}
	getBody(t, m.URL("/cluster"), 200)

	// With the token, a change goes through (forwarded to the leader with
	// it): the drain of a node is accepted.
	resp, body := do(t, "POST", m.URL("/cluster/drain"), `{"id":"node-3"}`, map[string]string{"Authorization": "Bearer " + testToken})
	if resp.StatusCode != 200 {
		t.Fatalf("drain with the token: %d %s", resp.StatusCode, body)
	}
}

// A node with a wrong token, or none, cannot join: Start fails at once
// with the refusal, and the cluster keeps its members.
func TestNodeWithoutTheTokenCannotJoin(t *testing.T) {
	c := cktest.New(t, 3, withToken(false))
	c.WaitConverged()
	for _, token := range []string{"", "another-token-of-enough-length"} {
		cfg := clusterkit.LocalConfig()
		ck, err := clusterkit.NewClusterKit(clusterkit.Options{NodeID: "intruder", HTTPAddr: cktest.FreeAddr(t),
			JoinAddr: c.Member(0).HTTPAddr(), ClusterToken: token, DataDir: t.TempDir(), Config: &cfg})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err = ck.Start()
		_ = ck.Stop()
		if time.Since(start) > 5*time.Second {
			t.Errorf("token %q: Start took %v to fail: a refusal is final", token, time.Since(start))
		}
		if err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("token %q: Start = %v, want a 401 refusal", token, err)
		}
	}
	for _, m := range c.Running() {
		if n := len(m.CK.Nodes()); n != 3 {
			t.Errorf("%s: %d members, want 3", m.ID, n)
		}
	}
}

// Dialling the raft port directly without the token gets nothing done: a
// vote request with a far higher term is refused at the handshake, the
// leader keeps its term and its place, and the refusal is counted.
func TestRaftPortRefusesPeersWithoutTheToken(t *testing.T) {
	c := cktest.New(t, 3, withToken(false))
	c.WaitConverged()
	leader := c.Leader()
	var before clusterkit.ConsensusStats
	getJSON(t, leader.URL("/consensus/stats"), 200, &before)

	trans, err := raft.NewTCPTransport(cktest.FreeAddr(t), nil, 1, time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer trans.Close()
	var resp raft.RequestVoteResponse
	err = trans.RequestVote(raft.ServerID(leader.ID), raft.ServerAddress(leader.CK.Node(leader.ID).RaftAddr), &raft.RequestVoteRequest{
		RPCHeader: raft.RPCHeader{ID: []byte("intruder"), Addr: []byte(trans.LocalAddr())},
		Term:      before.Term + 100, LastLogIndex: 1 << 40, LastLogTerm: before.Term + 100,
	}, &resp)
	if err == nil {
		t.Fatalf("a vote request without the token was answered: %+v", resp)
	}

	time.Sleep(500 * time.Millisecond)
	var after clusterkit.ConsensusStats
	getJSON(t, leader.URL("/consensus/stats"), 200, &after)
	if after.Term != before.Term || after.State != before.State {
		t.Errorf("leader after the vote request: term %d state %s, want term %d and still leader", after.Term, after.State, before.Term)
	}
	metrics := string(getBody(t, leader.URL("/metrics"), 200))
	if !strings.Contains(metrics, `clusterkit_unauthorized_requests_total{route="raft"}`) {
		t.Error("/metrics does not count the refused raft handshake")
	}
}

// With TokenForReads the map and the metrics need the token too; /health
// stays open, and the SDK reads the map with WithToken.
func TestTokenForReads(t *testing.T) {
	c := cktest.New(t, 3, withToken(true))
	c.WaitConverged()
	m := c.Member(2)
	for _, path := range []string{"/cluster", "/partitions", "/partitions/stats", "/partitions/key?key=k", "/consensus/leader",
		"/consensus/stats", "/health/detailed", "/metrics", "/cluster/formation"} {
		if resp, body := do(t, "GET", m.URL(path), "", nil); resp.StatusCode != 401 {
			t.Errorf("GET %s without the token: %d %s, want 401", path, resp.StatusCode, body)
		}
		if resp, body := do(t, "GET", m.URL(path), "", map[string]string{"Authorization": "Bearer " + testToken}); resp.StatusCode != 200 {
			t.Errorf("GET %s with the token: %d %s, want 200", path, resp.StatusCode, body)
		}
	}
	getBody(t, m.URL("/health"), 200)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := client.New(ctx, []string{m.HTTPAddr()}, client.WithToken(testToken))
	if err != nil {
		t.Fatalf("client with the token: %v", err)
	}
	cl.Close()
	if cl, err := client.New(ctx, []string{m.HTTPAddr()}, client.WithStartTimeout(time.Second)); err == nil {
		cl.Close()
		t.Error("a client without the token read the map")
	}
}

// A join with a weight beyond MaxWeight is refused with a 400 that names
// the field, with or without a token, and Options refuse it too.
func TestWeightIsBounded(t *testing.T) {
	c := cktest.New(t, 1)
	c.WaitConverged()
	body := fmt.Sprintf(`{"id":"heavy","http_addr":"127.0.0.1:1","raft_addr":"127.0.0.1:2","weight":%d}`, clusterkit.MaxWeight+1)
	resp, b := do(t, "POST", c.Member(0).URL("/cluster/join"), body, nil)
	if resp.StatusCode != 400 || !strings.Contains(string(b), "weight") {
		t.Errorf("join with weight %d: %d %s, want 400 naming weight", clusterkit.MaxWeight+1, resp.StatusCode, b)
	}
	if n := len(c.Member(0).CK.Nodes()); n != 1 {
		t.Errorf("%d members after a refused join, want 1", n)
	}
	_, err := clusterkit.NewClusterKit(clusterkit.Options{NodeID: "n", HTTPAddr: ":1", Weight: clusterkit.MaxWeight + 1})
	var fe *clusterkit.FieldError
	if !errors.As(err, &fe) || fe.Field != "Weight" {
		t.Errorf("Options.Weight %d: %v, want a FieldError naming Weight", clusterkit.MaxWeight+1, err)
	}
	for _, o := range []clusterkit.Options{
		{NodeID: "n", HTTPAddr: ":1", ClusterToken: "short"},
		{NodeID: "n", HTTPAddr: ":1", TokenForReads: true},
	} {
		if _, err := clusterkit.NewClusterKit(o); !errors.As(err, &fe) {
			t.Errorf("%+v: %v, want a FieldError", o, err)
		}
	}
}
