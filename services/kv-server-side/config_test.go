package main

import (
	"strings"
	"testing"
	"time"

	"clusterkit.dev/services/kit/node"
	"clusterkit.dev/services/kv-server-side/server"
)

func TestConfigDefaults(t *testing.T) {
	c, err := node.LoadAs[config]([]string{"NODE_ID=node-1"})
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
	c, err := node.LoadAs[config]([]string{
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

// The shared variables' errors are tested with them, in the kit
// (services/kit/node); these are this service's.
func TestConfigErrorsNameTheVariable(t *testing.T) {
	for _, c := range []struct {
		env  []string
		want string
	}{
		{nil, "NODE_ID"},
		{[]string{"NODE_ID=n", "ACK=some"}, "ACK"},
		{[]string{"NODE_ID=n", "FSYNC=sometimes"}, "FSYNC"},
		{[]string{"NODE_ID=n", "FORWARD_TIMEOUT=soon"}, "FORWARD_TIMEOUT"},
		{[]string{"NODE_ID=n", "REPLICATION_TIMEOUT=0s"}, "REPLICATION_TIMEOUT"},
		{[]string{"NODE_ID=n", "REPLICA_LAG_TIMEOUT=3s"}, "REPLICA_LAG_TIMEOUT"},
		{[]string{"NODE_ID=n", "REPLICA_LAG_TIMEOUT=0s"}, "REPLICA_LAG_TIMEOUT"},
		{[]string{"NODE_ID=n", "FORWARD_PROBE_TIMEOUT=5s"}, "FORWARD_PROBE_TIMEOUT"},
	} {
		_, err := node.LoadAs[config](c.env)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one naming %s", c.env, err, c.want)
		}
	}
}
