package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type testConfig struct {
	Env
	Fsync   bool          `env:"FSYNC" envDefault:"true"`
	Timeout time.Duration `env:"SOME_TIMEOUT" envDefault:"5s"`
}

func TestLoadNamesTheVariable(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		environ []string
		want    string
	}{
		{nil, "NODE_ID: required"},
		{[]string{"NODE_ID=n1", "PARTITION_COUNT=x"}, "PARTITION_COUNT: not a valid int"},
		{[]string{"NODE_ID=n1", "PARTITION_COUNT=-1"}, "PARTITION_COUNT"},
		{[]string{"NODE_ID=n1", "SOME_TIMEOUT=soon"}, "SOME_TIMEOUT: not a valid"},
		{[]string{"NODE_ID=n1", "CLUSTER_TOKEN=a", "CLUSTER_TOKEN_FILE=/x"}, "CLUSTER_TOKEN_FILE"},
		{[]string{"NODE_ID=n1", "CLUSTER_TOKEN_FILE=" + filepath.Join(dir, "missing")}, "CLUSTER_TOKEN_FILE"},
		{[]string{"NODE_ID=n1", "CLUSTER_TOKEN_FILE=" + empty}, "CLUSTER_TOKEN_FILE"},
		{[]string{"NODE_ID=n1", "TLS_DIR=/c", "TLS_CA_FILE=/c/ca.pem"}, "TLS_DIR"},
	} {
		var c testConfig
		if err := Load(tc.environ, &c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error containing %q", tc.environ, err, tc.want)
		}
	}
	var plain struct{ Fsync bool }
	if err := Load([]string{"NODE_ID=n1"}, &plain); err == nil {
		t.Error("a configuration without Env was accepted")
	}
}

func TestLoadDefaultsTokenFileAndTLSDir(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("s3cret-token-of-enough-length\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var c testConfig
	if err := Load([]string{"NODE_ID=kv-1", "CLUSTER_TOKEN_FILE=" + token, "TLS_DIR=/certs", "FSYNC=false"}, &c); err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":8080" || c.DataDir != filepath.Join("data", "kv-1") || c.Fsync || c.Timeout != 5*time.Second {
		t.Errorf("defaults: %+v", c)
	}
	o := c.Options(nil)
	if o.ClusterToken != "s3cret-token-of-enough-length" {
		t.Errorf("token %q from the file", o.ClusterToken)
	}
	if o.TLS == nil || o.TLS.CertFile != "/certs/kv-1.pem" || o.TLS.KeyFile != "/certs/kv-1-key.pem" || o.TLS.CAFile != "/certs/ca.pem" {
		t.Errorf("TLS from TLS_DIR: %+v", o.TLS)
	}
	if _, err := c.NewClusterKit(nil); err == nil || !strings.Contains(err.Error(), "TLS_CERT_FILE") {
		t.Errorf("NewClusterKit with missing TLS files: %v, want an error naming TLS_CERT_FILE", err)
	}
}
