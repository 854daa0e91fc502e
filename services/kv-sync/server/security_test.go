package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
	"clusterkit.dev/services/kit/kittest"
	"clusterkit.dev/services/kv-sync/client"
	"clusterkit.dev/services/kv-sync/internal/batch"
)

const testToken = "kv-sync-cluster-token-for-tests"

func tokenSetup(_ int, o *clusterkit.Options) { o.ClusterToken = testToken }

var bearer = http.Header{"Authorization": {"Bearer " + testToken}}

// With a cluster token, the requests of a quorum (versioned writes, owner
// reads, batches) and streams need it: without it they get 401 and change
// nothing. Plain requests stay open, the node's own quorums carrying the
// token; the Go client carries it with WithToken.
func TestTokenGuardsQuorumRequests(t *testing.T) {
	tc := newTestCluster(t, 3, Config{ClusterToken: testToken}, cktest.WithSetup(tokenSetup))
	const key = "guarded"
	set := func(body string, h http.Header) answer { return tc.Do(0, http.MethodPost, "/kv/set", []byte(body), h) }
	if a := set(`{"key":"guarded","value":"plain"}`, nil); a.Status != http.StatusOK {
		t.Fatalf("plain set without the token: %d %s", a.Status, a.Body)
	}
	owner := tc.Index(tc.Owners(0, key)[0])
	versioned := fmt.Sprintf(`{"key":%q,"value":"forged","version":{"counter":1000,"writer":9}}`, key)
	var op batch.Op
	op.Kind, op.Key, op.Counter, op.Writer, op.Value = batch.OpWrite, key, 2000, 9, []byte("forged")
	batchBody := batch.AppendEnd(batch.AppendOp(nil, &op), 1)
	for _, tcase := range []struct {
		name         string
		method, path string
		body         []byte
	}{
		{"versioned set", http.MethodPost, "/kv/set", []byte(versioned)},
		{"versioned delete", http.MethodPost, "/kv/delete", []byte(fmt.Sprintf(`{"key":%q,"version":{"counter":1000,"writer":9}}`, key))},
		{"owner read", http.MethodGet, "/kv/get?local=true&key=" + key, nil},
		{"batch", http.MethodPost, "/kv/batch", batchBody},
		{"stream", http.MethodGet, "/kv/internal/stream?partition=0", nil},
	} {
		for _, h := range []http.Header{nil, {"Authorization": {"Bearer wrong-token-wrong-token"}}} {
			if a := tc.Do(owner, tcase.method, tcase.path, tcase.body, h); a.Status != http.StatusUnauthorized || a.Err == "" {
				t.Errorf("%s with %v: %d %s, want 401 with a JSON error", tcase.name, h, a.Status, a.Body)
			}
		}
	}
	for _, m := range tc.C.Members() {
		if a := tc.Do(m.Index, http.MethodGet, "/kv/get?local=true&key="+key, nil, bearer); a.Status == http.StatusOK && a.Value != "plain" {
			t.Errorf("%s holds %q after refused requests, want \"plain\"", m.ID, a.Value)
		}
	}
	if a := tc.Do(owner, http.MethodGet, "/kv/get?local=true&key="+key, nil, bearer); a.Status != http.StatusOK || a.Value != "plain" {
		t.Errorf("owner read with the token: %d %s", a.Status, a.Body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := tc.newClient(client.WithToken(testToken)).Set(ctx, key, "from-client"); err != nil {
		t.Errorf("client with the token: %v", err)
	}
	if _, err := tc.newClient(client.WithTimeout(2*time.Second)).Set(ctx, key, "no-token"); err == nil {
		t.Error("a client without the token got a write acknowledged")
	}
}

// A version that cannot be exceeded is refused, so no request can freeze a
// key (a versioned write of counter 2^64-1 made every later write lose).
func TestMaximalVersionIsRefused(t *testing.T) {
	tc := newTestCluster(t, 3, Config{})
	const key = "frozen"
	body := fmt.Sprintf(`{"key":%q,"value":"evil","version":{"counter":%d,"writer":1}}`, key, uint64(math.MaxUint64))
	for _, o := range tc.Owners(0, key) {
		if a := tc.Do(tc.Index(o), http.MethodPost, "/kv/set", []byte(body), nil); a.Status != http.StatusBadRequest {
			t.Errorf("owner %s: %d %s, want 400", o, a.Status, a.Body)
		}
	}
	var op batch.Op
	op.Kind, op.Key, op.Counter, op.Writer, op.Value = batch.OpWrite, key, math.MaxUint64, 1, []byte("evil")
	a := tc.Do(tc.Index(tc.Owners(0, key)[0]), http.MethodPost, "/kv/batch", batch.AppendEnd(batch.AppendOp(nil, &op), 1), nil)
	if a.Status != http.StatusOK {
		t.Fatalf("batch: %d %s", a.Status, a.Body)
	}
	if res, err := batch.ReadResults(a.Body, 1); err != nil || res[0].Status != batch.StatusInvalid {
		t.Errorf("batch op with the maximal counter: %+v %v, want StatusInvalid", res, err)
	}
	if a := tc.Do(1, http.MethodPost, "/kv/set", []byte(`{"key":"frozen","value":"v2"}`), nil); a.Status != http.StatusOK {
		t.Fatalf("plain set: %d %s", a.Status, a.Body)
	}
	if a := tc.Get(2, key); a.Status != http.StatusOK || a.Value != "v2" {
		t.Errorf("read after the refused writes: %d %q, want v2", a.Status, a.Value)
	}
}

// A batch body beyond what a client sends is refused with 413, before it
// is read whole.
func TestBatchBodyIsCapped(t *testing.T) {
	tc := newTestCluster(t, 1, Config{})
	a := tc.Do(0, http.MethodPost, "/kv/batch", make([]byte, maxBatchBody+1), nil)
	if a.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized batch: %d %s, want 413", a.Status, a.Body)
	}
}

// A cluster with TLS and a token serves plain requests over HTTPS through
// every node, its quorums running over TLS, and the Go client works with
// WithTLS and WithToken.
func TestTLSCluster(t *testing.T) {
	ca, files := kittest.NodeTLS(t, "test")
	tlsSetup := cktest.WithSetup(func(_ int, o *clusterkit.Options) { o.TLS = files })
	tc := newTestCluster(t, 3, Config{ClusterToken: testToken}, cktest.WithSetup(tokenSetup), tlsSetup)
	clientTLS := &tls.Config{RootCAs: ca.Pool()}
	tc.Client.Transport = &http.Transport{TLSClientConfig: clientTLS}
	for i := range 3 {
		key := fmt.Sprintf("tls-%d", i)
		b, _ := json.Marshal(map[string]string{"key": key, "value": "v"})
		if a := tc.Do(i, http.MethodPost, "/kv/set", b, nil); a.Status != http.StatusOK {
			t.Fatalf("set through node %d over TLS: %d %s %s", i, a.Status, a.Body, a.Err)
		}
		if a := tc.Get((i+1)%3, key); a.Status != http.StatusOK || a.Value != "v" {
			t.Fatalf("get through node %d over TLS: %d %s", (i+1)%3, a.Status, a.Body)
		}
	}
	if !strings.HasPrefix(tc.C.Member(0).URL("/"), "https://") {
		t.Fatal("the test cluster does not speak HTTPS")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := tc.newClient(client.WithToken(testToken), client.WithTLS(clientTLS))
	if _, err := c.Set(ctx, "tls-client", "w"); err != nil {
		t.Fatalf("client over TLS: %v", err)
	}
	if v, _, err := c.Get(ctx, "tls-client"); err != nil || v != "w" {
		t.Fatalf("client read over TLS: %q %v", v, err)
	}
}
