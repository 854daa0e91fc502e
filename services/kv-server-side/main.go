// Command kv-server-side runs one node of a key-value store built on
// ClusterKit with server-side routing: any node accepts any request and
// forwards it to the key's primary, which replicates it. Configuration comes
// from the environment (see README.md).
//
//	kv-server-side              run the node
//	kv-server-side healthcheck  exit 0 if the local node is healthy, 1 if not
package main

import (
	"io"
	"log/slog"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kit/node"
	"clusterkit.dev/services/kv-server-side/server"
)

func main() {
	var cfg config
	node.Main("kv-server-side", &cfg, func(ck *clusterkit.ClusterKit, log *slog.Logger) (io.Closer, error) {
		log.Info("acknowledgement", "ack", cfg.Ack)
		return server.New(ck, cfg.serverConfig(log))
	})
}
