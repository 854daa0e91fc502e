// Command kv-async runs one node of kv-async, a key-value store on
// ClusterKit whose writes are acknowledged by the key's primary and
// replicated to the other owners in the background. It is configured by
// environment variables (see README.md).
//
//	kv-async              run the node
//	kv-async healthcheck  exit 0 if the local node is healthy, 1 if not
package main

import (
	"io"
	"log/slog"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kit/node"
	"clusterkit.dev/services/kv-async/server"
)

func main() {
	var cfg config
	node.Main("kv-async", &cfg, func(ck *clusterkit.ClusterKit, log *slog.Logger) (io.Closer, error) {
		return server.New(ck, cfg.serverConfig(log))
	})
}
