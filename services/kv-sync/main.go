// Command kv-sync runs one storage node of a key-value store built on
// ClusterKit with client-side quorums: clients (package client) write to
// every owner of a key and wait for a majority, and read from a majority.
// Configuration comes from the environment (see README.md).
//
//	kv-sync              run the node
//	kv-sync healthcheck  exit 0 if the local node is healthy, 1 if not
package main

import (
	"io"
	"log/slog"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kit/node"
	"clusterkit.dev/services/kv-sync/server"
)

func main() {
	var cfg config
	node.Main("kv-sync", &cfg, func(ck *clusterkit.ClusterKit, log *slog.Logger) (io.Closer, error) {
		return server.New(ck, cfg.serverConfig(log))
	})
}
