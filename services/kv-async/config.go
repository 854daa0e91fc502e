package main

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kv-async/server"
)

// config is the node's configuration, read from the environment. The
// ClusterKit variables keep the names of the reference examples.
type config struct {
	NodeID          string `env:"NODE_ID,required"`
	NodeName        string `env:"NODE_NAME"`
	HTTPAddr        string `env:"HTTP_ADDR,required"`
	HTTPAdvertise   string `env:"HTTP_ADVERTISE,expand"`
	RaftAddr        string `env:"RAFT_ADDR"`
	RaftAdvertise   string `env:"RAFT_ADVERTISE,expand"`
	JoinAddr        string `env:"JOIN_ADDR"`
	Bootstrap       bool   `env:"BOOTSTRAP"`
	BootstrapExpect int    `env:"BOOTSTRAP_EXPECT"`
	DataDir         string `env:"DATA_DIR,required"`
	Zone            string `env:"ZONE"`

	ClusterName       string `env:"CLUSTER_NAME"`
	PartitionCount    int    `env:"PARTITION_COUNT"`
	ReplicationFactor int    `env:"REPLICATION_FACTOR"`

	ReplicationBatch      int           `env:"REPLICATION_BATCH" envDefault:"512"`
	ReplicationBatchBytes int           `env:"REPLICATION_BATCH_BYTES" envDefault:"4194304"`
	ReplicationInterval   time.Duration `env:"REPLICATION_INTERVAL" envDefault:"10ms"`
	ReplicationTimeout    time.Duration `env:"REPLICATION_TIMEOUT" envDefault:"2s"`
	MaxReplicationLag     time.Duration `env:"MAX_REPLICATION_LAG" envDefault:"1s"`
	PartitionDropDelay    time.Duration `env:"PARTITION_DROP_DELAY" envDefault:"10m"`
	CopyTimeout           time.Duration `env:"COPY_TIMEOUT" envDefault:"5m"`
	StreamIdleTimeout     time.Duration `env:"STREAM_IDLE_TIMEOUT" envDefault:"5s"`
	SyncWindow            time.Duration `env:"SYNC_WINDOW" envDefault:"20ms"`
	LogLevel              string        `env:"LOG_LEVEL" envDefault:"info"`
	PprofAddr             string        `env:"PPROF_ADDR"`
}

// loadConfig reads and checks the environment; errors name the variable.
func loadConfig(environ map[string]string) (config, error) {
	var c config
	if err := env.ParseWithOptions(&c, env.Options{Environment: environ}); err != nil {
		return c, nameVariables(err)
	}
	var errs []error
	positive := func(name string, v int) {
		if v < 1 {
			errs = append(errs, fmt.Errorf("%s: %d must be at least 1", name, v))
		}
	}
	nonNegative := func(name string, d time.Duration) {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s: %v must not be negative", name, d))
		}
	}
	positive("REPLICATION_BATCH", c.ReplicationBatch)
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
	if c.PartitionCount < 0 {
		errs = append(errs, fmt.Errorf("PARTITION_COUNT: %d must not be negative (0: the cluster's value)", c.PartitionCount))
	}
	if c.ReplicationFactor < 0 {
		errs = append(errs, fmt.Errorf("REPLICATION_FACTOR: %d must not be negative (0: the cluster's value)", c.ReplicationFactor))
	}
	if _, err := c.logLevel(); err != nil {
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}

// nameVariables rewrites the parse errors of env, which name struct
// fields, to name the environment variables instead.
func nameVariables(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	errs := make([]error, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if f, ok := reflect.TypeFor[config]().FieldByName(pe.Name); ok {
				name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
				e = fmt.Errorf("%s: %w", name, pe.Err)
			}
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

func (c config) logLevel() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return 0, fmt.Errorf("LOG_LEVEL: %q: use debug, info, warn or error", c.LogLevel)
	}
	return l, nil
}

// clusterOptions returns the ClusterKit options of the node.
func (c config) clusterOptions(log *slog.Logger) clusterkit.Options {
	cfg := clusterkit.DefaultConfig()
	if c.ClusterName != "" {
		cfg.ClusterName = c.ClusterName
	}
	cfg.PartitionCount = c.PartitionCount
	cfg.ReplicationFactor = c.ReplicationFactor
	return clusterkit.Options{
		NodeID: c.NodeID, NodeName: c.NodeName,
		HTTPAddr: c.HTTPAddr, HTTPAdvertise: c.HTTPAdvertise,
		RaftAddr: c.RaftAddr, RaftAdvertise: c.RaftAdvertise,
		JoinAddr: c.JoinAddr, Bootstrap: c.Bootstrap, BootstrapExpect: c.BootstrapExpect,
		DataDir: c.DataDir + "/cluster", Zone: c.Zone,
		Config: &cfg, Logger: log,
	}
}

// serverConfig returns the kv-async settings of the node.
func (c config) serverConfig(log *slog.Logger) server.Config {
	return server.Config{
		DataDir:               c.DataDir + "/kv",
		ReplicationBatch:      c.ReplicationBatch,
		ReplicationBatchBytes: c.ReplicationBatchBytes,
		ReplicationInterval:   c.ReplicationInterval,
		ReplicationTimeout:    c.ReplicationTimeout,
		MaxReplicationLag:     cmp.Or(c.MaxReplicationLag, -1), // 0s: no bound
		DropDelay:             c.PartitionDropDelay,
		CopyTimeout:           c.CopyTimeout,
		StreamIdleTimeout:     c.StreamIdleTimeout,
		SyncWindow:            c.SyncWindow,
		Logger:                log,
	}
}

// envNames maps ClusterKit option names, as its errors name them, to the
// variables that set them.
var envNames = map[string]string{
	"NodeID": "NODE_ID", "NodeName": "NODE_NAME", "HTTPAddr": "HTTP_ADDR", "HTTPAdvertise": "HTTP_ADVERTISE",
	"RaftAddr": "RAFT_ADDR", "RaftAdvertise": "RAFT_ADVERTISE", "JoinAddr": "JOIN_ADDR", "DataDir": "DATA_DIR",
	"PartitionCount": "PARTITION_COUNT", "ReplicationFactor": "REPLICATION_FACTOR", "ClusterName": "CLUSTER_NAME",
	"BootstrapExpect": "BOOTSTRAP_EXPECT",
}

// explain adds the variable's name to a ClusterKit option error.
func explain(err error) error {
	var fe *clusterkit.FieldError
	if errors.As(err, &fe) {
		if name, ok := envNames[fe.Field]; ok {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return err
}
