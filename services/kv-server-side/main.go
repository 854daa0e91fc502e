// Command kv-server-side runs one node of a key-value store built on
// ClusterKit with server-side routing: any node accepts any request and
// forwards it to the key's primary, which replicates it. Configuration comes
// from the environment (see README.md).
//
//	kv-server-side              run the node
//	kv-server-side healthcheck  exit 0 if the local node is healthy, 1 if not
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"clusterkit.dev/services/kv-server-side/server"
)

// defaultGOGC is the node's GOGC unless the environment sets one.
const defaultGOGC = 400

func main() {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		if err := healthcheck(envOr("HTTP_ADDR", ":8080")); err != nil {
			fmt.Fprintln(os.Stderr, "unhealthy:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "kv-server-side:", err)
		os.Exit(1)
	}
}

// run starts the node and stops it on SIGINT or SIGTERM.
func run() error {
	cfg, err := loadConfig(os.Environ())
	if err != nil {
		return err
	}
	if _, set := os.LookupEnv("GOGC"); !set {
		// A node allocates per request and keeps a small heap: collecting
		// less often saves CPU for the requests.
		debug.SetGCPercent(defaultGOGC)
	}
	log := cfg.logger()
	if cfg.PprofAddr != "" {
		stopPprof, err := servePprof(cfg.PprofAddr, log)
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	ck, err := cfg.newClusterKit(log)
	if err != nil {
		return err
	}
	srv, err := server.New(ck, cfg.serverConfig(log))
	if err != nil {
		return err
	}
	if err := ck.Start(); err != nil {
		return errors.Join(err, srv.Close())
	}
	log.Info("kv-server-side started", "node", cfg.NodeID, "http", cfg.HTTPAddr, "ack", cfg.Ack)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	log.Info("stopping")
	return errors.Join(ck.Stop(), srv.Close())
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
