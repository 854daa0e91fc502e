package main

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"clusterkit.dev/services/kit/node"
	"clusterkit.dev/services/kv-async/server"
)

// config is the node's configuration, read from the environment: the
// variables every service shares (node.Env) and kv-async's own.
type config struct {
	node.Env

	ReplicationBatch      int           `env:"REPLICATION_BATCH" envDefault:"512"`
	ReplicationBatchBytes int           `env:"REPLICATION_BATCH_BYTES" envDefault:"4194304"`
	ReplicationInterval   time.Duration `env:"REPLICATION_INTERVAL" envDefault:"10ms"`
	ReplicationTimeout    time.Duration `env:"REPLICATION_TIMEOUT" envDefault:"2s"`
	MaxReplicationLag     time.Duration `env:"MAX_REPLICATION_LAG" envDefault:"1s"`
	PartitionDropDelay    time.Duration `env:"PARTITION_DROP_DELAY" envDefault:"10m"`
	CopyTimeout           time.Duration `env:"COPY_TIMEOUT" envDefault:"5m"`
	StreamIdleTimeout     time.Duration `env:"STREAM_IDLE_TIMEOUT" envDefault:"5s"`
	SyncWindow            time.Duration `env:"SYNC_WINDOW" envDefault:"20ms"`
	WriteTimeout          time.Duration `env:"WRITE_TIMEOUT" envDefault:"30s"`
}

// Check checks kv-async's own variables; node.Load checks the shared
// ones first, then calls it.
func (c *config) Check() error {
	var errs []error
	nonNegative := func(name string, d time.Duration) {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s: %v must not be negative", name, d))
		}
	}
	if c.ReplicationBatch < 1 {
		errs = append(errs, fmt.Errorf("REPLICATION_BATCH: %d must be at least 1", c.ReplicationBatch))
	}
	if c.ReplicationBatchBytes < 1 || c.ReplicationBatchBytes > server.MaxReplicationBatchBytes {
		errs = append(errs, fmt.Errorf("REPLICATION_BATCH_BYTES: %d is outside 1..%d", c.ReplicationBatchBytes, server.MaxReplicationBatchBytes))
	}
	nonNegative("REPLICATION_INTERVAL", c.ReplicationInterval)
	if c.ReplicationTimeout <= 0 {
		errs = append(errs, fmt.Errorf("REPLICATION_TIMEOUT: %v must be positive", c.ReplicationTimeout))
	}
	nonNegative("MAX_REPLICATION_LAG", c.MaxReplicationLag)
	nonNegative("PARTITION_DROP_DELAY", c.PartitionDropDelay)
	nonNegative("COPY_TIMEOUT", c.CopyTimeout)
	nonNegative("STREAM_IDLE_TIMEOUT", c.StreamIdleTimeout)
	nonNegative("SYNC_WINDOW", c.SyncWindow)
	if c.WriteTimeout <= 0 {
		errs = append(errs, fmt.Errorf("WRITE_TIMEOUT: %v must be positive", c.WriteTimeout))
	}
	return errors.Join(errs...)
}

// serverConfig returns the kv-async settings of the node. The store lives
// in DATA_DIR/kv, next to ClusterKit's raft state in DATA_DIR.
func (c *config) serverConfig(log *slog.Logger) server.Config {
	return server.Config{
		DataDir:               filepath.Join(c.DataDir, "kv"),
		ReplicationBatch:      c.ReplicationBatch,
		ReplicationBatchBytes: c.ReplicationBatchBytes,
		ReplicationInterval:   c.ReplicationInterval,
		ReplicationTimeout:    c.ReplicationTimeout,
		MaxReplicationLag:     cmp.Or(c.MaxReplicationLag, -1), // 0s: no bound
		DropDelay:             c.PartitionDropDelay,
		CopyTimeout:           c.CopyTimeout,
		StreamIdleTimeout:     c.StreamIdleTimeout,
		SyncWindow:            c.SyncWindow,
		WriteTimeout:          c.WriteTimeout,
		Logger:                log,
	}
}
