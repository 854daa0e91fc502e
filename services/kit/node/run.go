package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"clusterkit.dev/clusterkit"
)

// DefaultGOGC is a node's GOGC unless the environment sets one: a node
// allocates per request and keeps a small heap, and collecting less often
// saves CPU for the requests.
const DefaultGOGC = 400

// Main is a service's main: "healthcheck" as the first argument runs
// Healthcheck and exits 0 or 1; otherwise it runs the node with Run and
// exits 1 with the error when Run fails. cfg is the service's
// configuration, a pointer to a struct embedding Env, and attach builds
// the service on the node's ClusterKit before it starts.
func Main(name string, cfg any, attach func(ck *clusterkit.ClusterKit, log *slog.Logger) (io.Closer, error)) {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		if err := Healthcheck(os.Environ()); err != nil {
			fmt.Fprintln(os.Stderr, "unhealthy:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, name, os.Environ(), cfg, attach); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// Run loads cfg from environ (Load, which checks it), builds the node's ClusterKit, attaches the
// service, starts the node and serves until ctx ends; then it stops the
// node and closes the service.
func Run(ctx context.Context, name string, environ []string, cfg any, attach func(ck *clusterkit.ClusterKit, log *slog.Logger) (io.Closer, error)) error {
	if err := Load(environ, cfg); err != nil {
		return err
	}
	e := envOf(cfg)
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(DefaultGOGC)
	}
	log := e.Logger()
	if e.PprofAddr != "" {
		stopPprof, err := ServePprof(e.PprofAddr, log)
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	ck, err := e.NewClusterKit(log)
	if err != nil {
		return err
	}
	srv, err := attach(ck, log)
	if err != nil {
		return err
	}
	if err := ck.Start(); err != nil {
		return errors.Join(NameVariable(err), srv.Close())
	}
	log.Info(name+" started", "node", e.NodeID, "http", e.HTTPAddr, "scheme", ck.Scheme())
	<-ctx.Done()
	log.Info("stopping")
	return errors.Join(ck.Stop(), srv.Close())
}
