package main

import (
	"strings"
	"testing"
	"time"

	"clusterkit.dev/services/kit/node"
)

func TestLoadConfig(t *testing.T) {
	base := []string{"NODE_ID=node-1", "HTTP_ADDR=:8080", "DATA_DIR=/data"}
	with := func(kv ...string) []string { return append(append([]string{}, base...), kv...) }

	c, err := node.LoadAs[config](base)
	if err != nil {
		t.Fatal(err)
	}
	if c.ReplicationBatch != 512 || c.PartitionDropDelay != 10*time.Minute || c.PartitionCount != 0 || c.ReplicationFactor != 0 ||
		c.SyncWindow != 20*time.Millisecond || c.ReplicationInterval != 10*time.Millisecond || c.PprofAddr != "" {
		t.Fatalf("defaults: %+v", c)
	}
	if sc := c.serverConfig(nil); sc.SyncWindow != c.SyncWindow || sc.ReplicationInterval != c.ReplicationInterval || sc.DataDir != "/data/kv" ||
		sc.WriteTimeout != 30*time.Second {
		t.Fatalf("server config %+v from %+v", sc, c)
	}
	if o := c.Options(nil); o.DataDir != "/data" || o.Config.PartitionCount != 0 || o.Config.ReplicationFactor != 0 {
		t.Fatalf("cluster options: %+v", o)
	}
	if c, err := node.LoadAs[config](with("SYNC_WINDOW=0s")); err != nil || c.SyncWindow != 0 {
		t.Fatalf("SYNC_WINDOW=0s: %+v, %v", c.SyncWindow, err)
	}
	// HTTP_ADDR and DATA_DIR have defaults.
	if c, err := node.LoadAs[config]([]string{"NODE_ID=node-3"}); err != nil || c.HTTPAddr != ":8080" || c.serverConfig(nil).DataDir != "data/node-3/kv" {
		t.Fatalf("defaults of HTTP_ADDR and DATA_DIR: %+v, %v", c, err)
	}
	// The cluster token and TLS come from the shared variables.
	c, err = node.LoadAs[config](with("CLUSTER_TOKEN=s3cret", "TLS_DIR=/tls"))
	if err != nil {
		t.Fatal(err)
	}
	if o := c.Options(nil); o.ClusterToken != "s3cret" || o.TLS == nil || o.TLS.CertFile != "/tls/node-1.pem" || o.TLS.CAFile != "/tls/ca.pem" {
		t.Fatalf("token and TLS options: %+v", o)
	}

	for _, tt := range []struct {
		env  []string
		want string // the variable the error must name
	}{
		{[]string{"HTTP_ADDR=:8080"}, "NODE_ID"},
		{with("PARTITION_COUNT=many"), "PARTITION_COUNT"},
		{with("PARTITION_COUNT=-4"), "PARTITION_COUNT"},
		{with("REPLICATION_FACTOR=-1"), "REPLICATION_FACTOR"},
		{with("BOOTSTRAP=maybe"), "BOOTSTRAP"},
		{with("BOOTSTRAP_EXPECT=some"), "BOOTSTRAP_EXPECT"},
		{with("REPLICATION_BATCH=0"), "REPLICATION_BATCH"},
		{with("REPLICATION_BATCH_BYTES=1099511627776"), "REPLICATION_BATCH_BYTES"},
		{with("REPLICATION_INTERVAL=soon"), "REPLICATION_INTERVAL"},
		{with("REPLICATION_TIMEOUT=0s"), "REPLICATION_TIMEOUT"},
		{with("PARTITION_DROP_DELAY=-1s"), "PARTITION_DROP_DELAY"},
		{with("LOG_LEVEL=loud"), "LOG_LEVEL"},
		{with("SYNC_WINDOW=-1ms"), "SYNC_WINDOW"},
		{with("SYNC_WINDOW=soon"), "SYNC_WINDOW"},
		{with("WRITE_TIMEOUT=0s"), "WRITE_TIMEOUT"},
		{with("CLUSTER_TOKEN=a", "CLUSTER_TOKEN_FILE=/x"), "CLUSTER_TOKEN_FILE"},
	} {
		_, err := node.LoadAs[config](tt.env)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("env %v: error %v, want one naming %s", tt.env, err, tt.want)
		}
	}

	// Errors of the library's own checks name the variable too.
	c, _ = node.LoadAs[config](with("HTTP_ADDR=nowhere"))
	if _, err = c.NewClusterKit(c.Logger()); err == nil || !strings.HasPrefix(err.Error(), "HTTP_ADDR: ") {
		t.Fatalf("bad HTTP_ADDR: %v", err)
	}
	c, _ = node.LoadAs[config](with("JOIN_ADDR=kv-1:8080,kv-2:8080,kv-3:8080", "BOOTSTRAP_EXPECT=2"))
	if _, err = c.NewClusterKit(c.Logger()); err == nil || !strings.HasPrefix(err.Error(), "BOOTSTRAP_EXPECT: ") {
		t.Fatalf("BOOTSTRAP_EXPECT not a majority: %v", err)
	}
}

// Every node of a compose cluster gets the same advertise settings and
// derives its own from NODE_ID, its service name.
func TestConfigAdvertiseExpandsNodeID(t *testing.T) {
	c, err := node.LoadAs[config]([]string{"NODE_ID=kv-7", "HTTP_ADDR=:8080", "DATA_DIR=/data",
		"HTTP_ADVERTISE=${NODE_ID}:8080", "RAFT_ADVERTISE=${NODE_ID}:9080"})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAdvertise != "kv-7:8080" || c.RaftAdvertise != "kv-7:9080" {
		t.Fatalf("advertise: %q, %q", c.HTTPAdvertise, c.RaftAdvertise)
	}
}
