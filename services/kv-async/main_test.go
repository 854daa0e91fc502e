package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
)

func TestLoadConfig(t *testing.T) {
	base := map[string]string{"NODE_ID": "node-1", "HTTP_ADDR": ":8080", "DATA_DIR": "/data"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}

	c, err := loadConfig(base)
	if err != nil {
		t.Fatal(err)
	}
	if c.ReplicationBatch != 512 || c.PartitionDropDelay != 10*time.Minute || c.PartitionCount != 0 || c.ReplicationFactor != 0 ||
		c.SyncWindow != 20*time.Millisecond || c.ReplicationInterval != 10*time.Millisecond || c.PprofAddr != "" {
		t.Fatalf("defaults: %+v", c)
	}
	if sc := c.serverConfig(nil); sc.SyncWindow != c.SyncWindow || sc.ReplicationInterval != c.ReplicationInterval {
		t.Fatalf("server config %+v from %+v", sc, c)
	}
	if c, err := loadConfig(with("SYNC_WINDOW", "0s")); err != nil || c.SyncWindow != 0 {
		t.Fatalf("SYNC_WINDOW=0s: %+v, %v", c.SyncWindow, err)
	}
	o := c.clusterOptions(nil)
	if o.Config.PartitionCount != 0 || o.Config.ReplicationFactor != 0 || o.DataDir != "/data/cluster" || c.serverConfig(nil).DataDir != "/data/kv" {
		t.Fatalf("derived options: %+v, server %+v", o, c.serverConfig(nil))
	}

	for _, tt := range []struct {
		env  map[string]string
		want string // the variable the error must name
	}{
		{with("NODE_ID", ""), "NODE_ID"},
		{with("HTTP_ADDR", ""), "HTTP_ADDR"},
		{with("DATA_DIR", ""), "DATA_DIR"},
		{with("PARTITION_COUNT", "many"), "PARTITION_COUNT"},
		{with("PARTITION_COUNT", "-4"), "PARTITION_COUNT"},
		{with("REPLICATION_FACTOR", "-1"), "REPLICATION_FACTOR"},
		{with("BOOTSTRAP", "maybe"), "BOOTSTRAP"},
		{with("BOOTSTRAP_EXPECT", "some"), "BOOTSTRAP_EXPECT"},
		{with("REPLICATION_BATCH", "0"), "REPLICATION_BATCH"},
		{with("REPLICATION_BATCH_BYTES", "1099511627776"), "REPLICATION_BATCH_BYTES"},
		{with("REPLICATION_INTERVAL", "soon"), "REPLICATION_INTERVAL"},
		{with("PARTITION_DROP_DELAY", "-1s"), "PARTITION_DROP_DELAY"},
		{with("LOG_LEVEL", "loud"), "LOG_LEVEL"},
		{with("SYNC_WINDOW", "-1ms"), "SYNC_WINDOW"},
		{with("SYNC_WINDOW", "soon"), "SYNC_WINDOW"},
	} {
		_, err := loadConfig(tt.env)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("env %v: error %v, want one naming %s", tt.env, err, tt.want)
		}
	}

	// Errors of the library's own checks name the variable too.
	c, _ = loadConfig(with("HTTP_ADDR", "nowhere"))
	_, err = clusterkit.NewClusterKit(c.clusterOptions(nil))
	if err = explain(err); err == nil || !strings.HasPrefix(err.Error(), "HTTP_ADDR: ") {
		t.Fatalf("bad HTTP_ADDR: %v", err)
	}
	c, _ = loadConfig(with("JOIN_ADDR", "kv-1:8080,kv-2:8080,kv-3:8080", "BOOTSTRAP_EXPECT", "2"))
	_, err = clusterkit.NewClusterKit(c.clusterOptions(nil))
	if err = explain(err); err == nil || !strings.HasPrefix(err.Error(), "BOOTSTRAP_EXPECT: ") {
		t.Fatalf("BOOTSTRAP_EXPECT not a majority: %v", err)
	}
	c, _ = loadConfig(with("JOIN_ADDR", "kv-1:8080,kv-2:8080", "BOOTSTRAP_EXPECT", "2"))
	if o := c.clusterOptions(nil); o.BootstrapExpect != 2 {
		t.Fatalf("BOOTSTRAP_EXPECT=2 gives BootstrapExpect %d", o.BootstrapExpect)
	}
	if explain(nil) != nil || !errors.Is(explain(errSentinel), errSentinel) {
		t.Fatal("explain changes errors it has nothing to add to")
	}
}

var errSentinel = errors.New("sentinel")

func TestHealthcheck(t *testing.T) {
	c := cktest.New(t, 1)
	c.WaitConverged()
	_, port, _ := strings.Cut(c.Member(0).HTTPAddr(), ":")
	if code := healthcheck(":" + port); code != 0 {
		t.Fatalf("healthcheck of a healthy node: exit %d", code)
	}
	c.Stop(0)
	if code := healthcheck(":" + port); code != 1 {
		t.Fatalf("healthcheck of a stopped node: exit %d", code)
	}
	if code := healthcheck("no-port"); code != 1 {
		t.Fatalf("healthcheck with a bad HTTP_ADDR: exit %d", code)
	}
}

// Every node of a compose cluster gets the same advertise settings and
// derives its own from NODE_ID, its service name.
func TestConfigAdvertiseExpandsNodeID(t *testing.T) {
	c, err := loadConfig(map[string]string{"NODE_ID": "kv-7", "HTTP_ADDR": ":8080", "DATA_DIR": "/data",
		"HTTP_ADVERTISE": "${NODE_ID}:8080", "RAFT_ADVERTISE": "${NODE_ID}:9080"})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAdvertise != "kv-7:8080" || c.RaftAdvertise != "kv-7:9080" {
		t.Fatalf("advertise: %q, %q", c.HTTPAdvertise, c.RaftAdvertise)
	}
}
