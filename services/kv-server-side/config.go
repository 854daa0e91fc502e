package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kv-server-side/server"
)

// config is the service's configuration, read from the environment. The
// cluster variables keep the names of the reference README.
type config struct {
	NodeID          string `env:"NODE_ID,required"`
	NodeName        string `env:"NODE_NAME"`
	HTTPAddr        string `env:"HTTP_ADDR" envDefault:":8080"`
	HTTPAdvertise   string `env:"HTTP_ADVERTISE,expand"`
	RaftAddr        string `env:"RAFT_ADDR"`
	RaftAdvertise   string `env:"RAFT_ADVERTISE,expand"`
	JoinAddr        string `env:"JOIN_ADDR"`
	Bootstrap       bool   `env:"BOOTSTRAP"`
	BootstrapExpect int    `env:"BOOTSTRAP_EXPECT"`
	DataDir         string `env:"DATA_DIR"`
	Zone            string `env:"ZONE"`

	ClusterName       string `env:"CLUSTER_NAME"`
	PartitionCount    int    `env:"PARTITION_COUNT"`
	ReplicationFactor int    `env:"REPLICATION_FACTOR"`

	Ack                 string        `env:"ACK" envDefault:"all"`
	Fsync               bool          `env:"FSYNC" envDefault:"true"`
	ForwardTimeout      time.Duration `env:"FORWARD_TIMEOUT" envDefault:"5s"`
	ReplicationTimeout  time.Duration `env:"REPLICATION_TIMEOUT" envDefault:"2s"`
	ReplicaLagTimeout   time.Duration `env:"REPLICA_LAG_TIMEOUT" envDefault:"300ms"`
	ForwardProbeTimeout time.Duration `env:"FORWARD_PROBE_TIMEOUT" envDefault:"300ms"`
	DropAfter           time.Duration `env:"DROP_AFTER" envDefault:"10m"`
	LogLevel            slog.Level    `env:"LOG_LEVEL" envDefault:"info"`
	PprofAddr           string        `env:"PPROF_ADDR"`
}

// loadConfig reads the configuration from environ (os.Environ's format)
// and checks it. Every error names the variable at fault.
func loadConfig(environ []string) (config, error) {
	var c config
	if err := env.ParseWithOptions(&c, env.Options{Environment: env.ToMap(environ)}); err != nil {
		return c, envError(err)
	}
	if c.DataDir == "" {
		c.DataDir = filepath.Join("data", c.NodeID)
	}
	switch {
	case c.Ack != string(server.AckAll) && c.Ack != string(server.AckPrimary):
		return c, fmt.Errorf("ACK: want %q or %q, got %q", server.AckAll, server.AckPrimary, c.Ack)
	case c.PartitionCount < 0:
		return c, fmt.Errorf("PARTITION_COUNT: %d is negative (0 takes the cluster's value)", c.PartitionCount)
	case c.ReplicationFactor < 0:
		return c, fmt.Errorf("REPLICATION_FACTOR: %d is negative (0 takes the cluster's value)", c.ReplicationFactor)
	case c.ForwardTimeout <= 0:
		return c, fmt.Errorf("FORWARD_TIMEOUT: %v must be positive", c.ForwardTimeout)
	case c.ReplicationTimeout <= 0:
		return c, fmt.Errorf("REPLICATION_TIMEOUT: %v must be positive", c.ReplicationTimeout)
	case c.ReplicaLagTimeout <= 0 || c.ReplicaLagTimeout > c.ReplicationTimeout:
		return c, fmt.Errorf("REPLICA_LAG_TIMEOUT: %v must be positive and at most REPLICATION_TIMEOUT (%v)", c.ReplicaLagTimeout, c.ReplicationTimeout)
	case c.ForwardProbeTimeout <= 0 || c.ForwardProbeTimeout >= c.ForwardTimeout:
		return c, fmt.Errorf("FORWARD_PROBE_TIMEOUT: %v must be positive and less than FORWARD_TIMEOUT (%v)", c.ForwardProbeTimeout, c.ForwardTimeout)
	}
	return c, nil
}

// envError rewrites the parser's errors, which name struct fields, to name
// the environment variables.
func envError(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	msgs := make([]string, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		var unset env.VarIsNotSetError
		switch {
		case errors.As(e, &pe):
			msgs = append(msgs, fmt.Sprintf("%s: not a valid %s: %v", envName(pe.Name), pe.Type, errors.Unwrap(e)))
		case errors.As(e, &unset):
			msgs = append(msgs, unset.Key+": required")
		default:
			msgs = append(msgs, e.Error())
		}
	}
	return errors.New(strings.Join(msgs, "; "))
}

// envName returns the variable of config's field.
func envName(field string) string {
	if f, ok := reflect.TypeFor[config]().FieldByName(field); ok {
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		return name
	}
	return field
}

// optionsFields maps ClusterKit's option names to the variables that set
// them, so that the library's validation errors name the variable.
var optionsFields = map[string]string{
	"NodeID": "NODE_ID", "NodeName": "NODE_NAME", "HTTPAddr": "HTTP_ADDR", "HTTPAdvertise": "HTTP_ADVERTISE",
	"RaftAddr": "RAFT_ADDR", "RaftAdvertise": "RAFT_ADVERTISE", "JoinAddr": "JOIN_ADDR", "DataDir": "DATA_DIR",
	"PartitionCount": "PARTITION_COUNT", "ReplicationFactor": "REPLICATION_FACTOR", "ClusterName": "CLUSTER_NAME",
	"BootstrapExpect": "BOOTSTRAP_EXPECT",
}

// newClusterKit builds the node's ClusterKit from c.
func (c config) newClusterKit(log *slog.Logger) (*clusterkit.ClusterKit, error) {
	cfg := clusterkit.DefaultConfig()
	if c.ClusterName != "" {
		cfg.ClusterName = c.ClusterName
	}
	cfg.PartitionCount = c.PartitionCount
	cfg.ReplicationFactor = c.ReplicationFactor
	ck, err := clusterkit.NewClusterKit(clusterkit.Options{
		NodeID:          c.NodeID,
		NodeName:        c.NodeName,
		HTTPAddr:        c.HTTPAddr,
		HTTPAdvertise:   c.HTTPAdvertise,
		RaftAddr:        c.RaftAddr,
		RaftAdvertise:   c.RaftAdvertise,
		JoinAddr:        c.JoinAddr,
		Bootstrap:       c.Bootstrap,
		BootstrapExpect: c.BootstrapExpect,
		DataDir:         c.DataDir,
		Zone:            c.Zone,
		Config:          &cfg,
		Logger:          log,
	})
	var fe *clusterkit.FieldError
	if errors.As(err, &fe) {
		if name, ok := optionsFields[fe.Field]; ok {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return ck, err
}

// serverConfig returns the KV service's configuration.
func (c config) serverConfig(log *slog.Logger) server.Config {
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

// logger returns the process logger: text lines on stderr.
func (c config) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: c.LogLevel}))
}
