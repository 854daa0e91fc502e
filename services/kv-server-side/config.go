package main

import (
	"fmt"
	"log/slog"
	"time"

	"clusterkit.dev/services/kit/node"
	"clusterkit.dev/services/kv-server-side/server"
)

// config is the service's configuration, read from the environment: the
// variables every service shares (node.Env) and kv-server-side's own.
type config struct {
	node.Env

	Ack                 string        `env:"ACK" envDefault:"all"`
	Fsync               bool          `env:"FSYNC" envDefault:"true"`
	ForwardTimeout      time.Duration `env:"FORWARD_TIMEOUT" envDefault:"5s"`
	ReplicationTimeout  time.Duration `env:"REPLICATION_TIMEOUT" envDefault:"2s"`
	ReplicaLagTimeout   time.Duration `env:"REPLICA_LAG_TIMEOUT" envDefault:"300ms"`
	ForwardProbeTimeout time.Duration `env:"FORWARD_PROBE_TIMEOUT" envDefault:"300ms"`
	DropAfter           time.Duration `env:"DROP_AFTER" envDefault:"10m"`
}

// Check checks kv-server-side's own variables; node.Load checks the shared
// ones first, then calls it.
func (c *config) Check() error {
	switch {
	case c.Ack != string(server.AckAll) && c.Ack != string(server.AckPrimary):
		return fmt.Errorf("ACK: want %q or %q, got %q", server.AckAll, server.AckPrimary, c.Ack)
	case c.ForwardTimeout <= 0:
		return fmt.Errorf("FORWARD_TIMEOUT: %v must be positive", c.ForwardTimeout)
	case c.ReplicationTimeout <= 0:
		return fmt.Errorf("REPLICATION_TIMEOUT: %v must be positive", c.ReplicationTimeout)
	case c.ReplicaLagTimeout <= 0 || c.ReplicaLagTimeout > c.ReplicationTimeout:
		return fmt.Errorf("REPLICA_LAG_TIMEOUT: %v must be positive and at most REPLICATION_TIMEOUT (%v)", c.ReplicaLagTimeout, c.ReplicationTimeout)
	case c.ForwardProbeTimeout <= 0 || c.ForwardProbeTimeout >= c.ForwardTimeout:
		return fmt.Errorf("FORWARD_PROBE_TIMEOUT: %v must be positive and less than FORWARD_TIMEOUT (%v)", c.ForwardProbeTimeout, c.ForwardTimeout)
	}
	return nil
}

// serverConfig returns the KV service's configuration.
func (c *config) serverConfig(log *slog.Logger) server.Config {
	return server.Config{
		DataDir:             c.DataDir,
		Ack:                 server.AckMode(c.Ack),
		NoSync:              !c.Fsync,
		ForwardTimeout:      c.ForwardTimeout,
		ReplicationTimeout:  c.ReplicationTimeout,
		ReplicaLagTimeout:   c.ReplicaLagTimeout,
		ForwardProbeTimeout: c.ForwardProbeTimeout,
		DropAfter:           c.DropAfter,
		Logger:              log,
	}
}
