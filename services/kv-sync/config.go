package main

import (
	"fmt"
	"log/slog"
	"time"

	"clusterkit.dev/services/kit/node"
	"clusterkit.dev/services/kv-sync/server"
)

// config is the service's configuration, read from the environment: the
// variables every service shares (node.Env) and kv-sync's own.
type config struct {
	node.Env

	Fsync         bool          `env:"FSYNC" envDefault:"true"`
	QuorumTimeout time.Duration `env:"QUORUM_TIMEOUT" envDefault:"5s"`
	CallTimeout   time.Duration `env:"CALL_TIMEOUT"` // 0: the server's default
	DropAfter     time.Duration `env:"DROP_AFTER" envDefault:"10m"`
}

// Check checks kv-sync's own variables; node.Load checks the shared
// ones first, then calls it.
func (c *config) Check() error {
	switch {
	case c.QuorumTimeout <= 0:
		return fmt.Errorf("QUORUM_TIMEOUT: %v must be positive", c.QuorumTimeout)
	case c.CallTimeout < 0:
		return fmt.Errorf("CALL_TIMEOUT: %v is negative", c.CallTimeout)
	case c.CallTimeout > c.QuorumTimeout:
		return fmt.Errorf("CALL_TIMEOUT: %v must not exceed QUORUM_TIMEOUT (%v)", c.CallTimeout, c.QuorumTimeout)
	}
	return nil
}

// serverConfig returns the KV service's configuration.
func (c *config) serverConfig(log *slog.Logger) server.Config {
	return server.Config{
		DataDir:       c.DataDir,
		ClusterToken:  c.ClusterToken,
		NoSync:        !c.Fsync,
		QuorumTimeout: c.QuorumTimeout,
		CallTimeout:   c.CallTimeout,
		DropAfter:     c.DropAfter,
		Logger:        log,
	}
}
