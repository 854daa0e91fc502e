package main

import (
	"strings"
	"testing"
	"time"

	"clusterkit.dev/services/kv-server-side/server"
)

func TestConfigDefaults(t *testing.T) {
	c, err := loadConfig([]string{"NODE_ID=node-1"})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":8080" || c.DataDir != "data/node-1" || c.Ack != "all" || !c.Fsync ||
		c.ForwardTimeout != 5*time.Second || c.PartitionCount != 0 || c.ReplicationFactor != 0 {
		t.Fatalf("defaults: %+v", c)
	}
	sc := c.serverConfig(c.Logger())
	if sc.Ack != server.AckAll || sc.NoSync || sc.DataDir != "data/node-1" {
		t.Fatalf("server config: %+v", sc)
	}
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigReadsTheReferenceVariables(t *testing.T) {
	c, err := loadConfig([]string{
		"NODE_ID=node-2", "NODE_NAME=Server-2", "HTTP_ADDR=0.0.0.0:8081", "HTTP_ADVERTISE=kv-2:8081",
		"RAFT_ADDR=0.0.0.0:9081", "RAFT_ADVERTISE=kv-2:9081", "JOIN_ADDR=kv-1:8080,kv-3:8082", "BOOTSTRAP=false", "BOOTSTRAP_EXPECT=2",
		"DATA_DIR=/data", "ZONE=b", "CLUSTER_NAME=shop", "PARTITION_COUNT=64", "REPLICATION_FACTOR=3",
		"ACK=primary", "FSYNC=false", "FORWARD_TIMEOUT=2s", "REPLICATION_TIMEOUT=500ms", "DROP_AFTER=-1s", "LOG_LEVEL=debug",
	})
	if err != nil {
		t.Fatal(err)
	}
	ck, err := c.NewClusterKit(c.Logger())
	if err != nil {
		t.Fatalf("cluster options: %v", err)
	}
	if ck.GetMyNodeID() != "node-2" {
		t.Fatalf("node ID %q", ck.GetMyNodeID())
	}
	sc := c.serverConfig(c.Logger())
	if sc.Ack != server.AckPrimary || !sc.NoSync || sc.ForwardTimeout != 2*time.Second ||
		sc.ReplicationTimeout != 500*time.Millisecond || sc.DropAfter >= 0 || sc.DataDir != "/data" {
		t.Fatalf("server config: %+v", sc)
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	for _, c := range []struct {
		env  []string
		want string
	}{
		{nil, "NODE_ID"},
		{[]string{"NODE_ID=n", "PARTITION_COUNT=many"}, "PARTITION_COUNT"},
		{[]string{"NODE_ID=n", "PARTITION_COUNT=-1"}, "PARTITION_COUNT"},
		{[]string{"NODE_ID=n", "REPLICATION_FACTOR=-3"}, "REPLICATION_FACTOR"},
		{[]string{"NODE_ID=n", "BOOTSTRAP=perhaps"}, "BOOTSTRAP"},
		{[]string{"NODE_ID=n", "BOOTSTRAP_EXPECT=some"}, "BOOTSTRAP_EXPECT"},
		{[]string{"NODE_ID=n", "ACK=some"}, "ACK"},
		{[]string{"NODE_ID=n", "FSYNC=sometimes"}, "FSYNC"},
		{[]string{"NODE_ID=n", "FORWARD_TIMEOUT=soon"}, "FORWARD_TIMEOUT"},
		{[]string{"NODE_ID=n", "REPLICATION_TIMEOUT=0s"}, "REPLICATION_TIMEOUT"},
		{[]string{"NODE_ID=n", "REPLICA_LAG_TIMEOUT=3s"}, "REPLICA_LAG_TIMEOUT"},
		{[]string{"NODE_ID=n", "REPLICA_LAG_TIMEOUT=0s"}, "REPLICA_LAG_TIMEOUT"},
		{[]string{"NODE_ID=n", "FORWARD_PROBE_TIMEOUT=5s"}, "FORWARD_PROBE_TIMEOUT"},
		{[]string{"NODE_ID=n", "LOG_LEVEL=loud"}, "LOG_LEVEL"},
	} {
		_, err := loadConfig(c.env)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one naming %s", c.env, err, c.want)
		}
	}
	// Errors found by the library name the variable too.
	for _, c := range []struct {
		env  []string
		want string
	}{
		{[]string{"NODE_ID=bad id!"}, "NODE_ID"},
		{[]string{"NODE_ID=n", "HTTP_ADDR=8080"}, "HTTP_ADDR"},
		{[]string{"NODE_ID=n", "JOIN_ADDR=:8080"}, "JOIN_ADDR"},
		{[]string{"NODE_ID=n", "REPLICATION_FACTOR=99"}, "REPLICATION_FACTOR"},
		{[]string{"NODE_ID=n", "JOIN_ADDR=kv-1:8080,kv-2:8080,kv-3:8080", "BOOTSTRAP_EXPECT=2"}, "BOOTSTRAP_EXPECT"},
		{[]string{"NODE_ID=n", "JOIN_ADDR=kv-1:8080", "BOOTSTRAP=true", "BOOTSTRAP_EXPECT=2"}, "BOOTSTRAP_EXPECT"},
	} {
		cfg, err := loadConfig(c.env)
		if err == nil {
			_, err = cfg.NewClusterKit(cfg.Logger())
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one naming %s", c.env, err, c.want)
		}
	}
}

// Every node of a compose cluster gets the same advertise settings and
// derives its own from NODE_ID, its service name.
func TestConfigAdvertiseExpandsNodeID(t *testing.T) {
	c, err := loadConfig([]string{"NODE_ID=kv-7", "HTTP_ADVERTISE=${NODE_ID}:8080", "RAFT_ADVERTISE=${NODE_ID}:9080"})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAdvertise != "kv-7:8080" || c.RaftAdvertise != "kv-7:9080" {
		t.Fatalf("advertise: %q, %q", c.HTTPAdvertise, c.RaftAdvertise)
	}
}
