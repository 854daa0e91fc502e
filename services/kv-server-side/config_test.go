package main

import (
	"testing"
	"time"

	"clusterkit.dev/services/kit/kittest"
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
	c, err := node.LoadAs[config](kittest.ReferenceEnv("ACK=primary", "FSYNC=false", "FORWARD_TIMEOUT=2s", "REPLICATION_TIMEOUT=500ms", "DROP_AFTER=-1s"))
	if err != nil {
		t.Fatal(err)
	}
	kittest.CheckReferenceEnv(t, &c.Env)
	sc := c.serverConfig(c.Logger())
	if sc.Ack != server.AckPrimary || !sc.NoSync || sc.ForwardTimeout != 2*time.Second ||
		sc.ReplicationTimeout != 500*time.Millisecond || sc.DropAfter >= 0 || sc.DataDir != "/data" {
		t.Fatalf("server config: %+v", sc)
	}
}

// The shared variables' errors are tested with them, in the kit
// (services/kit/node); these are this service's.
func TestConfigErrorsNameTheVariable(t *testing.T) {
	refused := kittest.EnvRefused[config]
	refused(t, "NODE_ID")
	refused(t, "ACK", "NODE_ID=n", "ACK=some")
	refused(t, "FSYNC", "NODE_ID=n", "FSYNC=sometimes")
	refused(t, "FORWARD_TIMEOUT", "NODE_ID=n", "FORWARD_TIMEOUT=soon")
	refused(t, "REPLICATION_TIMEOUT", "NODE_ID=n", "REPLICATION_TIMEOUT=0s")
	refused(t, "REPLICA_LAG_TIMEOUT", "NODE_ID=n", "REPLICA_LAG_TIMEOUT=3s")
	refused(t, "REPLICA_LAG_TIMEOUT", "NODE_ID=n", "REPLICA_LAG_TIMEOUT=0s")
	refused(t, "FORWARD_PROBE_TIMEOUT", "NODE_ID=n", "FORWARD_PROBE_TIMEOUT=5s")
}
