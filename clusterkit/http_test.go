package clusterkit_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
)

type httpCase struct {
	name   string
	method string
	path   string
	body   string
	code   int
}

func do(t *testing.T, method, url, body string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestHTTPBadInputGetsJSONErrorsAndChangesNothing(t *testing.T) {
	c := cktest.New(t, 3)
	c.WaitConverged()
	m := c.Member(1) // a follower: requests that need the leader are forwarded
	version := m.CK.Version()
	n1 := c.Member(0).Options
	big := `{"id":"x","pad":"` + strings.Repeat("a", 2<<20) + `"}`
	cases := []httpCase{
		{"missing key", "GET", "/partitions/key", "", 400},
		{"empty key", "GET", "/partitions/key?key=", "", 400},
		{"key too long", "GET", "/partitions/key?key=" + strings.Repeat("k", 1025), "", 400},
		{"negative offset", "GET", "/partitions?offset=-1", "", 400},
		{"offset past end", "GET", "/partitions?offset=17", "", 400},
		{"non-numeric offset", "GET", "/partitions?offset=abc", "", 400},
		{"zero limit", "GET", "/partitions?limit=0", "", 400},
		{"huge limit", "GET", "/partitions?limit=99999999999999999999", "", 400},
		{"bad wait", "GET", "/cluster?wait=forever", "", 400},
		{"negative wait", "GET", "/cluster?wait=-1s", "", 400},
		{"unknown route", "GET", "/nope", "", 404},
		{"malformed join", "POST", "/cluster/join", `{"id":`, 400},
		{"join not an object", "POST", "/cluster/join", `[1,2]`, 400},
		{"join trailing data", "POST", "/cluster/join", `{"id":"x"} {}`, 400},
		{"join without id", "POST", "/cluster/join", `{"http_addr":"127.0.0.1:1","raft_addr":"127.0.0.1:2"}`, 400},
		{"join bad id", "POST", "/cluster/join", `{"id":"a/b","http_addr":"127.0.0.1:1","raft_addr":"127.0.0.1:2"}`, 400},
		{"join bare port", "POST", "/cluster/join", `{"id":"x","http_addr":":1","raft_addr":"127.0.0.1:2"}`, 400},
		{"join oversized", "POST", "/cluster/join", big, 413},
		{"join taken id", "POST", "/cluster/join", `{"id":"node-1","http_addr":"127.0.0.1:1","raft_addr":"127.0.0.1:2"}`, 409},
		{"join taken address", "POST", "/cluster/join", fmt.Sprintf(`{"id":"node-9","http_addr":%q,"raft_addr":%q}`, n1.HTTPAdvertise, n1.RaftAddr), 409},
		{"join other partition count", "POST", "/cluster/join", `{"id":"node-9","http_addr":"127.0.0.1:1","raft_addr":"127.0.0.1:2","partition_count":64}`, 409},
		{"leave without id", "POST", "/cluster/leave", `{}`, 400},
		{"leave unknown node", "POST", "/cluster/leave", `{"id":"ghost"}`, 404},
		{"leave malformed", "POST", "/cluster/leave", `nope`, 400},
	}
	for _, tc := range cases {
		resp, body := do(t, tc.method, m.URL(tc.path), tc.body, nil)
		if resp.StatusCode != tc.code {
			t.Errorf("%s: status %d, want %d: %s", tc.name, resp.StatusCode, tc.code, body)
			continue
		}
		var e clusterkit.ErrorBody
		if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
			t.Errorf("%s: body %q is not a JSON error", tc.name, body)
		}
	}
	// The refusal names the setting.
	_, body := do(t, "POST", m.URL("/cluster/join"), `{"id":"node-9","http_addr":"127.0.0.1:1","raft_addr":"127.0.0.1:2","partition_count":64}`, nil)
	if !bytes.Contains(body, []byte("PartitionCount 64")) {
		t.Errorf("settings conflict does not name the setting: %s", body)
	}
	// Nothing changed, and every node still serves.
	time.Sleep(200 * time.Millisecond)
	for _, o := range c.Running() {
		if v := o.CK.Version(); v != version {
			t.Errorf("%s: version %d after bad requests, want %d", o.ID, v, version)
		}
		getBody(t, o.URL("/health"), http.StatusOK)
	}
	if got := len(m.CK.Nodes()); got != 3 {
		t.Errorf("%d members after bad joins, want 3", got)
	}
}

func TestHTTPEndpointsAnswer(t *testing.T) {
	c := cktest.New(t, 3)
	c.WaitConverged()
	m := c.Member(2)

	var info clusterkit.ClusterInfo
	getJSON(t, m.URL("/cluster"), http.StatusOK, &info)
	if info.Version != m.CK.Version() || len(info.Nodes) != 3 || len(info.Partitions) != 16 ||
		info.PartitionCount != 16 || info.ReplicationFactor != 3 || info.LeaderID == "" {
		t.Fatalf("/cluster: %+v", info)
	}
	for _, n := range info.Nodes {
		if strings.HasPrefix(n.IP, ":") || strings.HasPrefix(n.RaftAddr, ":") {
			t.Errorf("node %s has an undialable address: %q %q", n.ID, n.IP, n.RaftAddr)
		}
	}

	var key clusterkit.KeyInfo
	getJSON(t, m.URL("/partitions/key?key=user:123"), http.StatusOK, &key)
	if key.Partition.ID != "partition-12" || key.Hash != clusterkit.KeyHash("user:123") || key.Primary == nil ||
		key.Primary.ID != key.Partition.PrimaryNode || len(key.Replicas) != 2 {
		t.Fatalf("/partitions/key: %+v", key)
	}

	var list clusterkit.PartitionList
	getJSON(t, m.URL("/partitions?offset=4&limit=3"), http.StatusOK, &list)
	if list.Offset != 4 || len(list.Partitions) != 3 || list.Partitions[0].Index != 4 {
		t.Fatalf("/partitions page: %+v", list)
	}

	var stats clusterkit.PartitionStats
	getJSON(t, m.URL("/partitions/stats"), http.StatusOK, &stats)
	if stats.Slots.Min != 16 || stats.Slots.Max != 16 || stats.Unowned != 0 || stats.UnderReplicated != 0 ||
		stats.Primaries.Max-stats.Primaries.Min > 1 {
		t.Fatalf("/partitions/stats: %+v", stats)
	}

	var leader clusterkit.LeaderInfo
	getJSON(t, m.URL("/consensus/leader"), http.StatusOK, &leader)
	if leader.LeaderID != info.LeaderID || leader.LeaderHTTPAddr == "" || leader.Term == 0 {
		t.Fatalf("/consensus/leader: %+v", leader)
	}

	var h clusterkit.Health
	getJSON(t, m.URL("/health/detailed"), http.StatusOK, &h)
	if h.Status != "ok" || h.RaftState == "" || h.Nodes["alive"] != 3 || h.PrimaryPartitions == nil {
		t.Fatalf("/health/detailed: %+v", h)
	}

	metrics := string(getBody(t, m.URL("/metrics"), http.StatusOK))
	for _, name := range []string{
		"clusterkit_raft_state", "clusterkit_raft_term", "clusterkit_raft_commit_index",
		"clusterkit_raft_applied_index", "clusterkit_raft_last_contact_seconds", "clusterkit_is_leader",
		`clusterkit_nodes{state="alive"} 3`, `clusterkit_partitions_owned{role="primary"}`,
		`clusterkit_partitions_owned{role="replica"}`, "clusterkit_map_version",
		"clusterkit_hook_invocations_total", "clusterkit_hook_duration_seconds",
	} {
		if !strings.Contains(metrics, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

func TestClusterETagAndLongPoll(t *testing.T) {
	c := cktest.New(t, 1)
	c.WaitConverged()
	m := c.Member(0)
	resp, _ := do(t, "GET", m.URL("/cluster"), "", nil)
	tag := resp.Header.Get("ETag")
	if tag == "" {
		t.Fatal("/cluster has no ETag")
	}
	resp, _ = do(t, "GET", m.URL("/cluster"), "", map[string]string{"If-None-Match": tag})
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match with the current ETag: %d, want 304", resp.StatusCode)
	}
	// A long-poll returns as soon as the map changes: a node joins.
	done := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest("GET", m.URL("/cluster?wait=20s"), nil)
		req.Header.Set("If-None-Match", tag)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			done <- nil
			return
		}
		r.Body.Close()
		done <- r
	}()
	time.Sleep(100 * time.Millisecond)
	c.Add()
	select {
	case r := <-done:
		if r == nil {
			return
		}
		if r.StatusCode != http.StatusOK || r.Header.Get("ETag") == tag {
			t.Fatalf("long-poll after a join: %d with ETag %s (old %s)", r.StatusCode, r.Header.Get("ETag"), tag)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("long-poll did not return after the map changed")
	}
	// And a long-poll with nothing changing ends with 304 after its wait.
	c.WaitConverged()
	resp, _ = do(t, "GET", m.URL("/cluster"), "", nil)
	start := time.Now()
	resp, _ = do(t, "GET", m.URL("/cluster?wait=300ms"), "", map[string]string{"If-None-Match": resp.Header.Get("ETag")})
	if resp.StatusCode != http.StatusNotModified || time.Since(start) < 250*time.Millisecond {
		t.Fatalf("idle long-poll: %d after %v, want 304 after ~300ms", resp.StatusCode, time.Since(start))
	}
}

func TestJoinIsIdempotent(t *testing.T) {
	c := cktest.New(t, 2)
	c.WaitConverged()
	version := c.Member(0).CK.Version()
	o := c.Member(1).Options
	body := fmt.Sprintf(`{"id":%q,"name":"Server-2","http_addr":%q,"raft_addr":%q,"weight":1}`, o.NodeID, o.HTTPAdvertise, o.RaftAddr)
	for _, m := range c.Running() { // through the leader and through a follower
		resp, b := do(t, "POST", m.URL("/cluster/join"), body, nil)
		var jr clusterkit.JoinResponse
		if resp.StatusCode != 200 || json.Unmarshal(b, &jr) != nil || !jr.AlreadyMember {
			t.Fatalf("rejoin via %s: %d %s", m.ID, resp.StatusCode, b)
		}
	}
	if v := c.Member(0).CK.Version(); v != version {
		t.Fatalf("rejoining changed the version %d -> %d", version, v)
	}
}

func TestStartRefusesOtherClusterSettings(t *testing.T) {
	c := cktest.New(t, 1)
	c.WaitConverged()
	cfg := clusterkit.LocalConfig()
	cfg.PartitionCount = 64
	cfg.JoinTimeout = 5 * time.Second
	o := clusterkit.Options{NodeID: "odd", HTTPAddr: "127.0.0.1:0", JoinAddr: c.Member(0).HTTPAddr(),
		DataDir: t.TempDir(), Config: &cfg}
	o.HTTPAddr, o.RaftAddr = freeAddr(t), freeAddr(t)
	ck, err := clusterkit.NewClusterKit(o)
	if err != nil {
		t.Fatal(err)
	}
	err = ck.Start()
	if err == nil || !strings.Contains(err.Error(), "PartitionCount 64 differs from the cluster's 16") {
		t.Fatalf("Start with another PartitionCount: %v", err)
	}
	if got := len(c.Member(0).CK.Nodes()); got != 1 {
		t.Fatalf("refused node became a member: %d nodes", got)
	}
}
