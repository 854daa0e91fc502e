package clusterkit

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestOptionsDefaults(t *testing.T) {
	r, err := resolveOptions(Options{NodeID: "node-1", HTTPAddr: ":8080"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, got, want string }{
		{"NodeName", r.NodeName, "Server-1"},
		{"HTTPAdvertise", r.HTTPAdvertise, "127.0.0.1:8080"},
		{"RaftAddr", r.RaftAddr, ":9080"},
		{"RaftAdvertise", r.RaftAdvertise, "127.0.0.1:9080"},
		{"DataDir", r.DataDir, filepath.Join("clusterkit-data", "node-1")},
		{"ClusterName", r.cfg.ClusterName, "clusterkit-cluster"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	if !r.Bootstrap {
		t.Error("a node without JoinAddr must bootstrap")
	}
	if r.Weight != 1 || r.cfg.MaxVoters != 5 {
		t.Errorf("Weight %d MaxVoters %d, want 1 and 5", r.Weight, r.cfg.MaxVoters)
	}
	// PartitionCount and ReplicationFactor stay 0 ("the cluster's") until a
	// cluster is founded with 16 and 3.
	if r.cfg.PartitionCount != 0 || r.cfg.ReplicationFactor != 0 {
		t.Errorf("PartitionCount %d ReplicationFactor %d, want 0 0", r.cfg.PartitionCount, r.cfg.ReplicationFactor)
	}
}

func TestOptionsContainerAddresses(t *testing.T) {
	r, err := resolveOptions(Options{NodeID: "web", HTTPAddr: "0.0.0.0:8080", HTTPAdvertise: "node-3:8080",
		JoinAddr: "node-1:8080, node-3:8080 ,node-2:8080"})
	if err != nil {
		t.Fatal(err)
	}
	if r.NodeName != "web" {
		t.Errorf("NodeName %q, want the ID when it has no number", r.NodeName)
	}
	if r.RaftAddr != "0.0.0.0:9080" || r.RaftAdvertise != "node-3:9080" {
		t.Errorf("raft bind %q advertise %q, want 0.0.0.0:9080 and node-3:9080", r.RaftAddr, r.RaftAdvertise)
	}
	if got := strings.Join(r.joinAddrs, ","); got != "node-1:8080,node-2:8080" {
		t.Errorf("join list %q: must drop this node's own address", got)
	}
	if r.Bootstrap {
		t.Error("a node with a join list must not bootstrap by default")
	}
}

func TestOptionsErrorsNameTheField(t *testing.T) {
	cfg := func(mod func(*Config)) *Config { c := LocalConfig(); mod(&c); return &c }
	for _, tc := range []struct {
		opts  Options
		field string
	}{
		{Options{HTTPAddr: ":8080"}, "NodeID"},
		{Options{NodeID: "a b", HTTPAddr: ":8080"}, "NodeID"},
		{Options{NodeID: "n"}, "HTTPAddr"},
		{Options{NodeID: "n", HTTPAddr: "8080"}, "HTTPAddr"},
		{Options{NodeID: "n", HTTPAddr: ":0"}, "HTTPAddr"},
		{Options{NodeID: "n", HTTPAddr: ":65000"}, "RaftAddr"},
		{Options{NodeID: "n", HTTPAddr: ":8080", RaftAdvertise: ":9000"}, "RaftAdvertise"},
		{Options{NodeID: "n", HTTPAddr: ":8080", HTTPAdvertise: "0.0.0.0:8080"}, "HTTPAdvertise"},
		{Options{NodeID: "n", HTTPAddr: ":8080", JoinAddr: ":8081"}, "JoinAddr"},
		{Options{NodeID: "n", HTTPAddr: ":8080", Weight: -1}, "Weight"},
		{Options{NodeID: "n", HTTPAddr: ":8080", Config: cfg(func(c *Config) { c.PartitionCount = -1 })}, "PartitionCount"},
		{Options{NodeID: "n", HTTPAddr: ":8080", Config: cfg(func(c *Config) { c.ReplicationFactor = 99 })}, "ReplicationFactor"},
		{Options{NodeID: "n", HTTPAddr: ":8080", Config: cfg(func(c *Config) { c.MaxVoters = 4 })}, "MaxVoters"},
		{Options{NodeID: "n", HTTPAddr: ":8080", Config: cfg(func(c *Config) { c.LeaderLeaseTimeout = 2 * c.HeartbeatTimeout })}, "LeaderLeaseTimeout"},
		{Options{NodeID: "n", HTTPAddr: ":8080", JoinAddr: "a:1,b:1", BootstrapExpect: -1}, "BootstrapExpect"},
		{Options{NodeID: "n", HTTPAddr: ":8080", JoinAddr: "a:1,b:1", BootstrapExpect: 2, Bootstrap: true}, "BootstrapExpect"},
		{Options{NodeID: "n", HTTPAddr: ":8080", JoinAddr: "a:1,b:1", BootstrapExpect: 4}, "BootstrapExpect"},
		{Options{NodeID: "n", HTTPAddr: ":8080", JoinAddr: "a:1,b:1,c:1", BootstrapExpect: 2}, "BootstrapExpect"},
		{Options{NodeID: "n", HTTPAddr: ":8080", BootstrapExpect: 2}, "BootstrapExpect"},
	} {
		_, err := NewClusterKit(tc.opts)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%+v: err %v, want a FieldError naming %s", tc.opts, err, tc.field)
		}
	}
}

func TestOptionsBootstrapExpect(t *testing.T) {
	ten := "127.0.0.1:8080"
	for i := 1; i < 10; i++ {
		ten += fmt.Sprintf(",node-%d:8080", i)
	}
	_, err := resolveOptions(Options{NodeID: "n", HTTPAddr: ":8080", JoinAddr: ten, BootstrapExpect: 3})
	want := "clusterkit: invalid BootstrapExpect: 3 is not a majority of the 10 nodes in JoinAddr (this node included): two groups could each found a cluster"
	if err == nil || err.Error() != want {
		t.Errorf("err %v, want %q", err, want)
	}
	for _, tc := range []struct {
		join   string
		expect int
		nodes  int
	}{
		{ten, 6, 10},
		{ten, 10, 10},
		// The join list names this node and repeats an address.
		{"127.0.0.1:8080,a:1,b:1,a:1", 2, 3},
		{"127.0.0.1:8080,a:1,b:1", 3, 3},
		{"", 1, 1},
	} {
		r, err := resolveOptions(Options{NodeID: "n", HTTPAddr: ":8080", JoinAddr: tc.join, BootstrapExpect: tc.expect})
		if err != nil {
			t.Errorf("join %q expect %d: %v", tc.join, tc.expect, err)
			continue
		}
		if r.formationNodes != tc.nodes || r.Bootstrap {
			t.Errorf("join %q: %d nodes, Bootstrap %v; want %d nodes and no Bootstrap", tc.join, r.formationNodes, r.Bootstrap, tc.nodes)
		}
	}
}
