package server

import (
	"crypto/tls"
	"net/http"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/certs"
	"clusterkit.dev/clusterkit/cktest"
	"clusterkit.dev/services/kit/kittest"
	"clusterkit.dev/services/kit/stream"
)

const testToken = "kv-server-side test token"

// newSecureTestCluster starts n nodes with the cluster token and, with
// withTLS, TLS from a fresh CA (HTTPS API, mutual-TLS raft); the test
// client sends the token and trusts the CA.
func newSecureTestCluster(t *testing.T, n int, withTLS bool) *testCluster {
	t.Helper()
	opts := []cktest.Option{cktest.WithSetup(func(_ int, o *clusterkit.Options) { o.ClusterToken = testToken })}
	var ca *certs.CA
	if withTLS {
		var files *clusterkit.TLSFiles
		ca, files = kittest.NodeTLS(t, "kv-server-side test CA")
		opts = append(opts, cktest.WithSetup(func(_ int, o *clusterkit.Options) { o.TLS = files }))
	}
	tc := newTestCluster(t, n, Config{}, opts...)
	tc.Token = testToken
	if ca != nil {
		tc.Client = &http.Client{Timeout: 10 * time.Second,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	}
	return tc
}

// With a cluster token, every node-to-node endpoint answers 401 with a
// JSON error to a request without the token or with a wrong one, changes
// nothing and counts it; the application API stays open, and the nodes'
// own requests (forwarded batches, replication, fallback reads) carry the
// token.
func TestNodeToNodeEndpointsNeedTheToken(t *testing.T) {
	tc := newSecureTestCluster(t, 3, false)
	key := "guarded"
	p, _ := tc.C.Member(0).CK.GetPartition(key)
	replica := tc.Index(p.ReplicaNodes[0])
	rec := recordForTest(key, "forged", p.Epoch, 1)
	frames := stream.AppendEnd(stream.AppendRecord(nil, &rec), 1)
	fwd := stream.AppendEnd(appendFwdOp(nil, &op{kind: opKindSet, key: key, value: []byte("forged")}), 1)
	cases := []struct {
		name, method, path string
		body               []byte
		header             http.Header
	}{
		{"replicate", http.MethodPost, "/kv/internal/replicate", frames, nil},
		{"forward", http.MethodPost, "/kv/internal/forward", fwd, nil},
		{"stream", http.MethodGet, "/kv/internal/stream?partition=0", nil, nil},
		{"owner read", http.MethodGet, "/kv/get?key=" + key + "&local=true&owner=true", nil, nil},
		{"local read", http.MethodGet, "/kv/get?key=" + key + "&local=true", nil, nil},
		{"set marked as forwarded", http.MethodPost, "/kv/set", []byte(`{"key":"guarded","value":"forged"}`),
			http.Header{headerForwardedBy: {"intruder"}}},
	}
	for _, token := range []string{"", "wrong token"} {
		for _, c := range cases {
			a := tc.DoAs(token, replica, c.method, c.path, c.body, c.header)
			if a.Status != http.StatusUnauthorized || a.Err == "" {
				t.Errorf("%s with token %q: %d %.200s, want 401 with a JSON error", c.name, token, a.Status, a.Body)
			}
		}
	}
	for i := range 3 {
		if recs, err := tc.Server(i).store.Scan(p.Index, "", 10); err != nil || len(recs) > 0 {
			t.Fatalf("node %d holds %v after unauthorized requests (%v)", i, recs, err)
		}
	}
	if got := tc.Metric(replica, `clusterkit_unauthorized_requests_total{route="/kv/internal/replicate"}`); got != 2 {
		t.Errorf("unauthorized replications counted %v, want 2", got)
	}

	// The application API needs no token, and its requests cross the
	// cluster (forwarded, replicated) with the nodes' token.
	for i := range 3 {
		if a := tc.DoAs("", i, http.MethodPost, "/kv/set", []byte(`{"key":"guarded","value":"v`+string(rune('0'+i))+`"}`), nil); a.Status != http.StatusOK {
			t.Fatalf("set via node %d without a token: %d %s", i, a.Status, a.Body)
		}
		if a := tc.DoAs("", (i+1)%3, http.MethodGet, "/kv/get?key=guarded", nil, nil); a.Status != http.StatusOK || a.Value != "v"+string(rune('0'+i)) {
			t.Fatalf("get via node %d without a token: %d %s", (i+1)%3, a.Status, a.Body)
		}
	}
	tc.CheckOwners(map[string]string{key: "v2"})
	// With the token, a node-to-node request is served.
	if a := tc.Do(replica, http.MethodGet, "/kv/get?key="+key+"&local=true", nil, nil); a.Status != http.StatusOK || a.Value != "v2" {
		t.Errorf("local read with the token: %d %s", a.Status, a.Body)
	}
}

// A 3-node cluster with TLS and the token serves writes and reads through
// every node: forwarded batches and replication run over TLS with the
// token, and every owner holds every write. A fourth node copies its
// partitions (streams over HTTPS with the token) and serves them.
func TestTLSClusterWithToken(t *testing.T) {
	tc := newSecureTestCluster(t, 3, true)
	if got := tc.Server(0).ck.Scheme(); got != "https" {
		t.Fatalf("scheme %q", got)
	}
	want := tc.writeKeys("tls", "v", 200)
	if len(want) != 200 {
		t.Fatalf("%d of 200 writes acknowledged over TLS", len(want))
	}
	tc.CheckReads(want)
	tc.CheckOwners(want)
	if got := tc.Metric(0, `kvss_forward_batch_ops_count{kind="write"}`); got == 0 {
		t.Error("no write was forwarded: the test did not cross nodes")
	}
	added := tc.Add()
	tc.WaitSettled()
	tc.CheckOwners(want)
	if got := tc.Metric(added, `kvss_migrated_records_total`); got == 0 {
		t.Error("the added node copied no record")
	}
	// Plain HTTP to a TLS node is not served.
	plain := &http.Client{Timeout: 5 * time.Second}
	if resp, err := plain.Post("http://"+tc.C.Member(1).HTTPAddr()+"/kv/set", "application/json", nil); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plaintext /kv/set to a TLS node answered 200")
		}
	}
}
