// Package wire is the contract of ClusterKit's HTTP API: the JSON bodies of
// its endpoints, the routing protocol's headers, status and answer, and the
// key hash that lets a client route a key without asking a node.
//
// It imports only the standard library and ClusterKit's placement package
// (which imports only the standard library), so that programs that talk to
// a cluster from outside — package client, the services' clients, ckctl —
// link none of a node's dependencies: no raft, no echo, no Prometheus.
// Package clusterkit declares the same types as aliases
// (clusterkit.ClusterInfo is wire.ClusterInfo), so code written against
// either compiles with both.
//
// Field names are stable: clients in other languages depend on them.
package wire
