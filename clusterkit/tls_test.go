package clusterkit_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/certs"
	"clusterkit.dev/clusterkit/cktest"
	"clusterkit.dev/clusterkit/client"
)

// testCA makes a CA and a certificate for each name under a temporary
// directory.
func testCA(t *testing.T, names ...string) (*certs.CA, map[string]certs.Node, string) {
	t.Helper()
	ca, err := certs.NewCA("test cluster CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files, err := ca.WriteFiles(dir, names, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca, files, filepath.Join(dir, "ca.pem")
}

func withTLS(files map[string]certs.Node, caFile string) cktest.Option {
	return cktest.WithSetup(func(_ int, o *clusterkit.Options) {
		n := files["node"]
		o.TLS = &clusterkit.TLSFiles{CertFile: n.CertFile, KeyFile: n.KeyFile, CAFile: caFile}
	})
}

// A cluster forms, joins and serves over TLS (raft with mutual TLS, the
// API over HTTPS); plaintext to a TLS node gets nothing, the SDK reads the
// map with WithTLS, and a node whose certificate comes from another CA
// cannot join.
func TestTLSCluster(t *testing.T) {
	ca, files, caFile := testCA(t, "node")
	c := cktest.New(t, 3, withTLS(files, caFile), withToken(false))
	c.WaitConverged()
	m := c.Member(1)

	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	resp, err := hc.Get(m.URL("/cluster"))
	if err != nil {
		t.Fatalf("GET /cluster over TLS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /cluster over TLS: %d", resp.StatusCode)
	}
	if resp, err := http.Get("http://" + m.HTTPAddr() + "/health"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plaintext HTTP to a TLS node was answered 200")
		}
	}
	if _, err := http.Get("https://" + m.HTTPAddr() + "/health"); err == nil {
		t.Error("HTTPS without the cluster's CA was accepted")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := client.New(ctx, []string{m.HTTPAddr()}, client.WithTLS(&tls.Config{RootCAs: ca.Pool()}))
	if err != nil {
		t.Fatalf("client over TLS: %v", err)
	}
	if got := cl.Topology().Version; got != m.CK.Version() {
		t.Errorf("client's map version %d, the node's %d", got, m.CK.Version())
	}
	cl.Close()

	// The token and a certificate from another CA: the join over HTTPS
	// fails the certificate check, and so would raft.
	_, other, otherCA := testCA(t, "node")
	cfg := clusterkit.LocalConfig()
	cfg.JoinTimeout = 30 * time.Second
	ck, err := clusterkit.NewClusterKit(clusterkit.Options{NodeID: "intruder", HTTPAddr: cktest.FreeAddr(t),
		JoinAddr: c.Member(0).HTTPAddr(), ClusterToken: testToken, DataDir: t.TempDir(), Config: &cfg,
		TLS: &clusterkit.TLSFiles{CertFile: other["node"].CertFile, KeyFile: other["node"].KeyFile, CAFile: otherCA}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = ck.Start()
	_ = ck.Stop()
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Start with another CA's certificate: %v, want a certificate error", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Start took %v to fail: a certificate that does not verify is final", d)
	}
	for _, m := range c.Running() {
		if n := len(m.CK.Nodes()); n != 3 {
			t.Errorf("%s: %d members, want 3", m.ID, n)
		}
	}
}

// Bad TLS files are refused by NewClusterKit with the field named.
func TestTLSOptionsAreChecked(t *testing.T) {
	_, files, caFile := testCA(t, "node")
	n := files["node"]
	for _, tc := range []struct {
		files clusterkit.TLSFiles
		field string
	}{
		{clusterkit.TLSFiles{KeyFile: n.KeyFile, CAFile: caFile}, "TLS.CertFile"},
		{clusterkit.TLSFiles{CertFile: n.CertFile, KeyFile: n.KeyFile}, "TLS.CAFile"},
		{clusterkit.TLSFiles{CertFile: n.CertFile, KeyFile: n.CertFile, CAFile: caFile}, "TLS.CertFile"},
		{clusterkit.TLSFiles{CertFile: n.CertFile, KeyFile: n.KeyFile, CAFile: n.KeyFile}, "TLS.CAFile"},
	} {
		_, err := clusterkit.NewClusterKit(clusterkit.Options{NodeID: "n", HTTPAddr: ":1", TLS: &tc.files})
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%+v: %v, want an error naming %s", tc.files, err, tc.field)
		}
	}
}
