// Command kv-async runs one node of kv-async, a key-value store on
// ClusterKit whose writes are acknowledged by the key's primary and
// replicated to the other owners in the background. It is configured by
// environment variables (see README.md); `kv-async healthcheck` checks a
// node on this host, for container health checks.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kv-async/server"
)

// defaultGOGC is the node's GOGC unless the environment sets one.
const defaultGOGC = 400

func main() {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(healthcheck(os.Getenv("HTTP_ADDR")))
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "kv-async:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := loadConfig(environ())
	if err != nil {
		return err
	}
	if _, set := os.LookupEnv("GOGC"); !set {
		// A node allocates per request and keeps a small heap: collecting
		// less often saves CPU for the requests.
		debug.SetGCPercent(defaultGOGC)
	}
	level, _ := cfg.logLevel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if cfg.PprofAddr != "" {
		stop, err := servePprof(cfg.PprofAddr, log)
		if err != nil {
			return err
		}
		defer stop()
	}

	ck, err := clusterkit.NewClusterKit(cfg.clusterOptions(log))
	if err != nil {
		return explain(err)
	}
	srv, err := server.New(ck, cfg.serverConfig(log))
	if err != nil {
		return err
	}
	defer srv.Close()
	if err := ck.Start(); err != nil {
		return explain(err)
	}
	log.Info("kv-async node started", "node", cfg.NodeID, "http", cfg.HTTPAddr)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	log.Info("stopping")
	return ck.Stop()
}
