package kittest

import (
	"strings"
	"testing"

	"clusterkit.dev/services/kit/node"
)

// EnvRefused checks that loading a service's configuration C
// (node.LoadAs) from environ fails with an error that names the variable
// want.
func EnvRefused[C any](t testing.TB, want string, environ ...string) {
	t.Helper()
	if _, err := node.LoadAs[C](environ); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%v: error %v, want one naming %s", environ, err, want)
	}
}

// ReferenceEnv returns the environment of a node that sets every shared
// variable (node.Env) as the reference README names them, for node-2 of a
// three-node cluster with its data in /data, then extra, the service's
// own variables.
func ReferenceEnv(extra ...string) []string {
	return append([]string{
		"NODE_ID=node-2", "NODE_NAME=Server-2", "HTTP_ADDR=0.0.0.0:8081", "HTTP_ADVERTISE=kv-2:8081",
		"RAFT_ADDR=0.0.0.0:9081", "RAFT_ADVERTISE=kv-2:9081", "JOIN_ADDR=kv-1:8080,kv-3:8082", "BOOTSTRAP=false", "BOOTSTRAP_EXPECT=2",
		"DATA_DIR=/data", "ZONE=b", "CLUSTER_NAME=shop", "PARTITION_COUNT=64", "REPLICATION_FACTOR=3", "LOG_LEVEL=debug",
	}, extra...)
}

// CheckReferenceEnv checks e, loaded from ReferenceEnv: it builds the
// ClusterKit of node-2.
func CheckReferenceEnv(t testing.TB, e *node.Env) {
	t.Helper()
	ck, err := e.NewClusterKit(e.Logger())
	if err != nil {
		t.Fatalf("cluster options: %v", err)
	}
	if ck.GetMyNodeID() != "node-2" {
		t.Fatalf("node ID %q", ck.GetMyNodeID())
	}
}
