package node

import (
	"fmt"
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
		{[]string{"NODE_ID=n1", "REPLICATION_FACTOR=-3"}, "REPLICATION_FACTOR"},
		{[]string{"NODE_ID=n1", "BOOTSTRAP=perhaps"}, "BOOTSTRAP"},
		{[]string{"NODE_ID=n1", "BOOTSTRAP_EXPECT=some"}, "BOOTSTRAP_EXPECT"},
		{[]string{"NODE_ID=n1", "FSYNC=sometimes"}, "FSYNC"},
		{[]string{"NODE_ID=n1", "LOG_LEVEL=loud"}, "LOG_LEVEL"},
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

// Errors found by the library, when the node's ClusterKit is built, name
// the variable too.
func TestLibraryErrorsNameTheVariable(t *testing.T) {
	for _, tc := range []struct {
		environ []string
		want    string
	}{
		{[]string{"NODE_ID=bad id!"}, "NODE_ID"},
		{[]string{"NODE_ID=n", "HTTP_ADDR=8080"}, "HTTP_ADDR"},
		{[]string{"NODE_ID=n", "JOIN_ADDR=:8080"}, "JOIN_ADDR"},
		{[]string{"NODE_ID=n", "REPLICATION_FACTOR=99"}, "REPLICATION_FACTOR"},
		{[]string{"NODE_ID=n", "JOIN_ADDR=kv-1:8080,kv-2:8080,kv-3:8080", "BOOTSTRAP_EXPECT=2"}, "BOOTSTRAP_EXPECT"},
		{[]string{"NODE_ID=n", "JOIN_ADDR=kv-1:8080", "BOOTSTRAP=true", "BOOTSTRAP_EXPECT=2"}, "BOOTSTRAP_EXPECT"},
	} {
		var c testConfig
		err := Load(tc.environ, &c)
		if err == nil {
			_, err = c.NewClusterKit(c.Logger())
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %s", tc.environ, err, tc.want)
		}
	}
}

// Every node of a compose cluster gets the same advertise settings and
// derives its own from NODE_ID, its service name.
func TestAdvertiseExpandsNodeID(t *testing.T) {
	var c testConfig
	if err := Load([]string{"NODE_ID=kv-7", "HTTP_ADVERTISE=${NODE_ID}:8080", "RAFT_ADVERTISE=${NODE_ID}:9080"}, &c); err != nil {
		t.Fatal(err)
	}
	if c.HTTPAdvertise != "kv-7:8080" || c.RaftAdvertise != "kv-7:9080" {
		t.Fatalf("advertise: %q, %q", c.HTTPAdvertise, c.RaftAdvertise)
	}
}

// checkedConfig refuses SOME_TIMEOUT above a minute, as a service checks
// its own variables.
type checkedConfig struct {
	Env
	Timeout time.Duration `env:"SOME_TIMEOUT" envDefault:"5s"`
}

func (c *checkedConfig) Check() error {
	if c.Timeout > time.Minute {
		return fmt.Errorf("SOME_TIMEOUT: %v is over a minute", c.Timeout)
	}
	return nil
}

func TestLoadCallsTheServiceCheck(t *testing.T) {
	if err := Load([]string{"NODE_ID=n1", "SOME_TIMEOUT=2m"}, &checkedConfig{}); err == nil || !strings.Contains(err.Error(), "SOME_TIMEOUT") {
		t.Fatalf("Load of a configuration its Check refuses: %v", err)
	}
	if err := Load([]string{"NODE_ID=n1", "PARTITION_COUNT=-1", "SOME_TIMEOUT=2m"}, &checkedConfig{}); err == nil || !strings.Contains(err.Error(), "PARTITION_COUNT") {
		t.Fatalf("Load checks the shared variables before the service's: %v", err)
	}
	var c checkedConfig
	if err := Load([]string{"NODE_ID=n1", "SOME_TIMEOUT=30s"}, &c); err != nil || c.Timeout != 30*time.Second {
		t.Fatalf("Load of a configuration its Check accepts: %v (%+v)", err, c)
	}
}
