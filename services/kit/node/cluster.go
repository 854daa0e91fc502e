package node

import (
	"errors"
	"fmt"
	"log/slog"

	"clusterkit.dev/clusterkit"
)

// optionsFields maps ClusterKit's option names to the variables that set
// them, so that the library's validation errors name the variable.
var optionsFields = map[string]string{
	"NodeID": "NODE_ID", "NodeName": "NODE_NAME", "HTTPAddr": "HTTP_ADDR", "HTTPAdvertise": "HTTP_ADVERTISE",
	"RaftAddr": "RAFT_ADDR", "RaftAdvertise": "RAFT_ADVERTISE", "JoinAddr": "JOIN_ADDR", "DataDir": "DATA_DIR",
	"PartitionCount": "PARTITION_COUNT", "ReplicationFactor": "REPLICATION_FACTOR", "ClusterName": "CLUSTER_NAME",
	"BootstrapExpect": "BOOTSTRAP_EXPECT", "ClusterToken": "CLUSTER_TOKEN", "TokenForReads": "TOKEN_FOR_READS",
	"TLS.CertFile": "TLS_CERT_FILE", "TLS.KeyFile": "TLS_KEY_FILE", "TLS.CAFile": "TLS_CA_FILE",
}

// Options returns the ClusterKit options the environment sets, with
// DefaultConfig.
func (e *Env) Options(log *slog.Logger) clusterkit.Options {
	cfg := clusterkit.DefaultConfig()
	if e.ClusterName != "" {
		cfg.ClusterName = e.ClusterName
	}
	cfg.PartitionCount = e.PartitionCount
	cfg.ReplicationFactor = e.ReplicationFactor
	o := clusterkit.Options{
		NodeID: e.NodeID, NodeName: e.NodeName,
		HTTPAddr: e.HTTPAddr, HTTPAdvertise: e.HTTPAdvertise,
		RaftAddr: e.RaftAddr, RaftAdvertise: e.RaftAdvertise,
		JoinAddr: e.JoinAddr, Bootstrap: e.Bootstrap, BootstrapExpect: e.BootstrapExpect,
		DataDir: e.DataDir, Zone: e.Zone,
		ClusterToken: e.ClusterToken, TokenForReads: e.TokenForReads,
		Config: &cfg, Logger: log,
	}
	if e.TLSCertFile != "" || e.TLSKeyFile != "" || e.TLSCAFile != "" {
		o.TLS = &clusterkit.TLSFiles{CertFile: e.TLSCertFile, KeyFile: e.TLSKeyFile, CAFile: e.TLSCAFile}
	}
	return o
}

// NewClusterKit builds the node's ClusterKit from the environment; an
// error names the variable at fault.
func (e *Env) NewClusterKit(log *slog.Logger) (*clusterkit.ClusterKit, error) {
	ck, err := clusterkit.NewClusterKit(e.Options(log))
	return ck, NameVariable(err)
}

// NameVariable prefixes a ClusterKit *FieldError with the variable that
// sets the field.
func NameVariable(err error) error {
	var fe *clusterkit.FieldError
	if errors.As(err, &fe) {
		if name, ok := optionsFields[fe.Field]; ok {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return err
}
