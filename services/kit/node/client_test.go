package node

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"clusterkit.dev/clusterkit"
)

// TestNewRequestCarriesTokenAndMapVersion sends a node-to-node request
// with NewClient and NewRequest to a real server and checks what it
// received: the cluster token, the map version, the method, path and body.
func TestNewRequestCarriesTokenAndMapVersion(t *testing.T) {
	const token = "a-cluster-token-of-some-length"
	ck, err := clusterkit.NewClusterKit(clusterkit.Options{NodeID: "node-1", HTTPAddr: "127.0.0.1:1", ClusterToken: token})
	if err != nil {
		t.Fatal(err)
	}
	var got *http.Request
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		b, _ := io.ReadAll(r.Body)
		body = string(b)
	}))
	defer srv.Close()
	c := NewClient(nil, 4)
	defer c.CloseIdleConnections()
	node := &clusterkit.Node{ID: "node-2", IP: strings.TrimPrefix(srv.URL, "http://")}
	req, err := NewRequest(context.Background(), ck, node, http.MethodPost, "/kv/internal/replicate?x=1", strings.NewReader("frames"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got.Method != http.MethodPost || got.URL.String() != "/kv/internal/replicate?x=1" || body != "frames" {
		t.Errorf("received %s %s %q", got.Method, got.URL, body)
	}
	if a := got.Header.Get("Authorization"); a != "Bearer "+token {
		t.Errorf("Authorization %q", a)
	}
	if v := got.Header.Get(clusterkit.HeaderMapVersion); v != "0" {
		t.Errorf("map version %q, want 0 (no map yet)", v)
	}
}
