// Package node is the plumbing every ClusterKit service shares: the
// environment of the cluster's variables (caarlos0/env), the ClusterKit
// it builds, the cluster token and TLS files, the profiler switch, the
// container health check and the run loop of a node process. A service
// embeds Env in its own configuration and keeps what is its own.
package node

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/caarlos0/env/v11"
)

// Env is the environment a node of any service reads. The cluster
// variables keep the names of the reference README.
type Env struct {
	NodeID          string `env:"NODE_ID,required"`
	NodeName        string `env:"NODE_NAME"`
	HTTPAddr        string `env:"HTTP_ADDR" envDefault:":8080"`
	HTTPAdvertise   string `env:"HTTP_ADVERTISE,expand"`
	RaftAddr        string `env:"RAFT_ADDR"`
	RaftAdvertise   string `env:"RAFT_ADVERTISE,expand"`
	JoinAddr        string `env:"JOIN_ADDR"`
	Bootstrap       bool   `env:"BOOTSTRAP"`
	BootstrapExpect int    `env:"BOOTSTRAP_EXPECT"`
	DataDir         string `env:"DATA_DIR"` // default data/<NODE_ID>
	Zone            string `env:"ZONE"`

	ClusterName       string `env:"CLUSTER_NAME"`
	PartitionCount    int    `env:"PARTITION_COUNT"`
	ReplicationFactor int    `env:"REPLICATION_FACTOR"`

	// ClusterToken, or the first line of ClusterTokenFile (a Docker
	// secret), is the cluster's shared secret: see ClusterKit's
	// Options.ClusterToken. Node-to-node endpoints need it too.
	ClusterToken     string `env:"CLUSTER_TOKEN"`
	ClusterTokenFile string `env:"CLUSTER_TOKEN_FILE"`
	TokenForReads    bool   `env:"TOKEN_FOR_READS"`
	// TLS: the node's certificate and key and the cluster's CA, or TLSDir
	// holding them as `make certs` names them (<NODE_ID>.pem,
	// <NODE_ID>-key.pem, ca.pem).
	TLSDir      string `env:"TLS_DIR"`
	TLSCertFile string `env:"TLS_CERT_FILE"`
	TLSKeyFile  string `env:"TLS_KEY_FILE"`
	TLSCAFile   string `env:"TLS_CA_FILE"`

	LogLevel  slog.Level `env:"LOG_LEVEL" envDefault:"info"`
	PprofAddr string     `env:"PPROF_ADDR"`
}

// Checker is a service's configuration that checks its own variables
// once they are parsed; its errors name the variable at fault.
type Checker interface {
	Check() error
}

// Load parses environ (os.Environ's format) into cfg, a pointer to a
// struct that embeds Env, and checks it: Env's part, then, when cfg is a
// Checker, the service's own. Every error names the variable at fault.
func Load(environ []string, cfg any) error {
	if err := env.ParseWithOptions(cfg, env.Options{Environment: env.ToMap(environ)}); err != nil {
		return envError(err, reflect.TypeOf(cfg).Elem())
	}
	e := envOf(cfg)
	if e == nil {
		return errors.New("node.Load: the configuration does not embed node.Env")
	}
	if err := e.check(); err != nil {
		return err
	}
	if c, ok := cfg.(Checker); ok {
		return c.Check()
	}
	return nil
}

// LoadAs returns a C, a struct that embeds Env, loaded from environ by
// Load.
func LoadAs[C any](environ []string) (C, error) {
	var c C
	err := Load(environ, &c)
	return c, err
}

func envOf(cfg any) *Env {
	v := reflect.ValueOf(cfg)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	f := v.Elem().FieldByName("Env")
	if !f.IsValid() || f.Type() != reflect.TypeFor[Env]() {
		return nil
	}
	return f.Addr().Interface().(*Env)
}

func (e *Env) check() error {
	if e.DataDir == "" {
		e.DataDir = filepath.Join("data", e.NodeID)
	}
	switch {
	case e.PartitionCount < 0:
		return fmt.Errorf("PARTITION_COUNT: %d is negative (0 takes the cluster's value)", e.PartitionCount)
	case e.ReplicationFactor < 0:
		return fmt.Errorf("REPLICATION_FACTOR: %d is negative (0 takes the cluster's value)", e.ReplicationFactor)
	case e.ClusterToken != "" && e.ClusterTokenFile != "":
		return errors.New("CLUSTER_TOKEN_FILE: set together with CLUSTER_TOKEN; give one")
	case e.TLSDir != "" && (e.TLSCertFile != "" || e.TLSKeyFile != "" || e.TLSCAFile != ""):
		return errors.New("TLS_DIR: set together with TLS_CERT_FILE, TLS_KEY_FILE or TLS_CA_FILE; give the directory or the files")
	}
	if e.ClusterTokenFile != "" {
		b, err := os.ReadFile(e.ClusterTokenFile)
		if err != nil {
			return fmt.Errorf("CLUSTER_TOKEN_FILE: %w", err)
		}
		e.ClusterToken, _, _ = strings.Cut(strings.TrimRight(string(b), "\r\n"), "\n")
		if e.ClusterToken == "" {
			return fmt.Errorf("CLUSTER_TOKEN_FILE: %s is empty", e.ClusterTokenFile)
		}
	}
	if e.TLSDir != "" {
		e.TLSCertFile = filepath.Join(e.TLSDir, e.NodeID+".pem")
		e.TLSKeyFile = filepath.Join(e.TLSDir, e.NodeID+"-key.pem")
		e.TLSCAFile = filepath.Join(e.TLSDir, "ca.pem")
	}
	return nil
}

// Logger returns the process logger: text lines on stderr.
func (e *Env) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: e.LogLevel}))
}

// envError rewrites the parser's errors, which name struct fields, to name
// the environment variables of t's fields.
func envError(err error, t reflect.Type) error {
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
			msgs = append(msgs, fmt.Sprintf("%s: not a valid %s: %v", envName(t, pe.Name), pe.Type, errors.Unwrap(e)))
		case errors.As(e, &unset):
			msgs = append(msgs, unset.Key+": required")
		default:
			msgs = append(msgs, e.Error())
		}
	}
	return errors.New(strings.Join(msgs, "; "))
}

// envName returns the variable of t's field (promoted fields included).
func envName(t reflect.Type, field string) string {
	if f, ok := t.FieldByName(field); ok {
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		return name
	}
	return field
}
