package kittest

import (
	"path/filepath"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/certs"
)

// NodeTLS makes a CA named name, valid for an hour, and a certificate it
// signs that every node of a test cluster shares, in a temporary
// directory. It returns the CA, whose Pool a client trusts, and the
// files as ClusterKit's Options.TLS takes them.
func NodeTLS(t testing.TB, name string) (*certs.CA, *clusterkit.TLSFiles) {
	t.Helper()
	ca, err := certs.NewCA(name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files, err := ca.WriteFiles(dir, []string{"node"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	node := files["node"]
	return ca, &clusterkit.TLSFiles{CertFile: node.CertFile, KeyFile: node.KeyFile, CAFile: filepath.Join(dir, "ca.pem")}
}
