package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	asyncclient "clusterkit.dev/services/kv-async/client"
	syncclient "clusterkit.dev/services/kv-sync/client"
)

// securedStrategies are the strategies whose client takes the cluster
// token and TLS: a run with -token or -tls-dir measures only these.
var securedStrategies = []string{"sync", "async"}

// security is how the load generator reaches a secured cluster: the
// cluster token (-token) and the TLS files (-tls-dir). The zero value is a
// plain cluster.
type security struct {
	token  string
	tlsDir string      // as make certs writes it: ca.pem, <node>.pem, <node>-key.pem
	tls    *tls.Config // trusts tlsDir's ca.pem; nil without TLS
}

// check loads the CA of tlsDir, and for local clusters checks that tlsDir
// holds a certificate and key for each of the n nodes (node-1 ...), and
// that every strategy measured takes what is set. Errors name the flag.
func (s *security) check(strategies []string, local bool, n int) error {
	if s.token == "" && s.tlsDir == "" {
		return nil
	}
	flag := "-token"
	if s.token == "" {
		flag = "-tls-dir"
	}
	for _, st := range strategies {
		if !slices.Contains(securedStrategies, st) {
			return fmt.Errorf("%s: only the clients of %v take the cluster token and TLS; measure -strategies %s", flag, securedStrategies, securedStrategies[0])
		}
	}
	if s.tlsDir == "" {
		return nil
	}
	caFile := filepath.Join(s.tlsDir, "ca.pem")
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return fmt.Errorf("-tls-dir: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("-tls-dir: %s holds no PEM certificate", caFile)
	}
	s.tls = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if !local {
		return nil
	}
	for i := 1; i <= n; i++ {
		for _, f := range []string{localNodeID(i) + ".pem", localNodeID(i) + "-key.pem"} {
			if _, err := os.Stat(filepath.Join(s.tlsDir, f)); err != nil {
				return fmt.Errorf("-tls-dir: the local nodes need their certificates (ckcerts -dir %s -nodes node-1,...,node-%d): %w", s.tlsDir, n, err)
			}
		}
	}
	return nil
}

// localNodeID is the NODE_ID of node i (1-based) of a local cluster.
func localNodeID(i int) string { return fmt.Sprintf("node-%d", i) }

// scheme is the nodes' scheme: https with TLS.
func (s security) scheme() string {
	if s.tls != nil {
		return "https"
	}
	return "http"
}

// nodeEnv is what a local node is started with: the token and its TLS
// files.
func (s security) nodeEnv() []string {
	var env []string
	if s.token != "" {
		env = append(env, "CLUSTER_TOKEN="+s.token)
	}
	if s.tlsDir != "" {
		env = append(env, "TLS_DIR="+s.tlsDir)
	}
	return env
}

// client returns an HTTP client for the nodes' own API (health, map),
// with the CA and the token.
func (s security) client(timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = s.tls
	return &http.Client{Timeout: timeout, Transport: tokenTransport{token: s.token, next: tr}}
}

// syncOptions are the kv-sync client's options for the cluster.
func (s security) syncOptions() []syncclient.Option {
	var opts []syncclient.Option
	if s.token != "" {
		opts = append(opts, syncclient.WithToken(s.token))
	}
	if s.tls != nil {
		opts = append(opts, syncclient.WithTLS(s.tls))
	}
	return opts
}

// asyncOptions are the kv-async client's options for the cluster.
func (s security) asyncOptions() []asyncclient.Option {
	var opts []asyncclient.Option
	if s.token != "" {
		opts = append(opts, asyncclient.WithToken(s.token))
	}
	if s.tls != nil {
		opts = append(opts, asyncclient.WithTLS(s.tls))
	}
	return opts
}

// describe says what is set, for the mode line: "" for a plain cluster.
func (s security) describe() string {
	switch {
	case s.token != "" && s.tls != nil:
		return "cluster token and TLS"
	case s.token != "":
		return "cluster token"
	case s.tls != nil:
		return "TLS"
	}
	return ""
}

// tokenTransport sends the cluster token with every request.
type tokenTransport struct {
	token string
	next  http.RoundTripper
}

func (t tokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.token == "" {
		return t.next.RoundTrip(req)
	}
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+t.token)
	return t.next.RoundTrip(req)
}
