package server

import (
	"context"
	"crypto/tls"
	"net/http"
	"strconv"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
	"clusterkit.dev/services/kit/kittest"
	"clusterkit.dev/services/kv-async/client"
)

// A cluster with the token and TLS (HTTPS API, mutual-TLS raft, the
// nodes' replication and streams over HTTPS with the token) serves a
// client configured with the CA: its writes reach every owner, read from
// each of them over HTTPS. Plain HTTP to a node fails.
func TestTLSAndTokenCluster(t *testing.T) {
	ca, files := kittest.NodeTLS(t, "kv-async test CA")
	tc := newCluster(t, 3, Config{}, withToken(), cktest.WithSetup(func(_ int, o *clusterkit.Options) {
		f := *files // each node its own copy
		o.TLS = &f
	}))
	var seeds []string
	for _, m := range tc.Running() {
		seeds = append(seeds, m.HTTPAddr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tlsConf := &tls.Config{RootCAs: ca.Pool()}
	c, err := client.New(ctx, seeds, client.WithTLS(tlsConf), client.WithToken(testToken))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	const n = 60 // over every partition's primary
	writeKeys(t, c, 0, n, "tls")
	checkEveryOwner(t, tc, c, n, func(i int) string { return "tls" + strconv.Itoa(i) })
	for i := 0; i < n; i += 7 {
		if got, err := c.Get(ctx, key(i)); err != nil || got != "tls"+strconv.Itoa(i) {
			t.Fatalf("get %s: %q, %v", key(i), got, err)
		}
	}

	hs := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf}}
	for _, m := range tc.Running() {
		if resp, err := http.Get("http://" + m.HTTPAddr() + "/kv/get?key=" + key(0)); err == nil {
			resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Errorf("plain HTTP to %s: %s", m.ID, resp.Status)
			}
		}
		// The node-to-node routes refuse a caller without the token even
		// over TLS with the CA.
		if a := send(t, hs, http.MethodGet, m.URL(pathStream+"?partition=0"), "", "", nil); a.status != http.StatusUnauthorized {
			t.Errorf("stream from %s without the token: %d", m.ID, a.status)
		}
	}
}
