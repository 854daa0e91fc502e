package main

import (
	"testing"
	"time"

	"clusterkit.dev/services/kit/kittest"
	"clusterkit.dev/services/kit/node"
)

func TestConfigDefaults(t *testing.T) {
	c, err := node.LoadAs[config]([]string{"NODE_ID=node-1"})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":8080" || c.DataDir != "data/node-1" || !c.Fsync ||
		c.QuorumTimeout != 5*time.Second || c.PartitionCount != 0 || c.ReplicationFactor != 0 {
		t.Fatalf("defaults: %+v", c)
	}
	sc := c.serverConfig(c.Logger())
	if sc.NoSync || sc.DataDir != "data/node-1" {
		t.Fatalf("server config: %+v", sc)
	}
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigReadsTheReferenceVariables(t *testing.T) {
	c, err := node.LoadAs[config](kittest.ReferenceEnv("FSYNC=false", "QUORUM_TIMEOUT=2s", "CALL_TIMEOUT=300ms", "DROP_AFTER=-1s"))
	if err != nil {
		t.Fatal(err)
	}
	kittest.CheckReferenceEnv(t, &c.Env)
	sc := c.serverConfig(c.Logger())
	if !sc.NoSync || sc.QuorumTimeout != 2*time.Second || sc.CallTimeout != 300*time.Millisecond ||
		sc.DropAfter >= 0 || sc.DataDir != "/data" {
		t.Fatalf("server config: %+v", sc)
	}
}

// The shared variables' errors are tested with them, in the kit
// (services/kit/node); these are this service's.
func TestConfigErrorsNameTheVariable(t *testing.T) {
	refused := kittest.EnvRefused[config]
	refused(t, "NODE_ID")
	refused(t, "FSYNC", "NODE_ID=n", "FSYNC=sometimes")
	refused(t, "QUORUM_TIMEOUT", "NODE_ID=n", "QUORUM_TIMEOUT=soon")
	refused(t, "QUORUM_TIMEOUT", "NODE_ID=n", "QUORUM_TIMEOUT=0s")
	refused(t, "CALL_TIMEOUT", "NODE_ID=n", "CALL_TIMEOUT=-1s")
	refused(t, "CALL_TIMEOUT", "NODE_ID=n", "QUORUM_TIMEOUT=2s", "CALL_TIMEOUT=3s")
}
