package main

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The files verify: each node certificate chains to the CA for its name,
// localhost and 127.0.0.1, for server and client use; a second run keeps
// the CA; bad flags are errors that name the flag.
func TestCertsVerify(t *testing.T) {
	dir := t.TempDir()
	if err := run([]string{"-dir", dir, "-nodes", "kv-sync-1,kv-sync-2", "-hosts", "10.1.2.3"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	for _, node := range []string{"kv-sync-1", "kv-sync-2"} {
		pair, err := tls.LoadX509KeyPair(filepath.Join(dir, node+".pem"), filepath.Join(dir, node+"-key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{node, "localhost", "127.0.0.1", "10.1.2.3"} {
			for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
				if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
					t.Errorf("%s as %s for %v: %v", node, name, usage, err)
				}
			}
		}
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: "kv-sync-9", Roots: pool}); err == nil {
			t.Errorf("%s verifies for another node's name", node)
		}
		if fi, err := os.Stat(filepath.Join(dir, node+"-key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s key mode %v (%v), want 0600", node, fi.Mode().Perm(), err)
		}
	}
	if err := run([]string{"-dir", dir, "-nodes", "kv-sync-3"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if string(again) != string(caPEM) {
		t.Error("a second run replaced the CA")
	}
	for flag, args := range map[string][]string{"-nodes": {"-dir", dir}, "-days": {"-dir", dir, "-nodes", "a", "-days", "0"}} {
		if err := run(args, io.Discard); err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("%v: %v, want an error naming %s", args, err, flag)
		}
	}
}
