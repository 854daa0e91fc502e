package clusterkit

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// TLSFiles are the PEM files of a node's TLS setup: its certificate and
// key, and the cluster's CA certificate.
type TLSFiles struct {
	CertFile, KeyFile, CAFile string
}

// tlsSetup is what a node serves and dials with under TLS.
type tlsSetup struct {
	// http serves the API: members present their certificates and are
	// verified against the CA; other clients need none (the token
	// authorises changes).
	http *tls.Config
	// raft serves raft: the peer's certificate is required and verified.
	raft *tls.Config
	// client dials members, presenting this node's certificate and
	// verifying theirs against the CA.
	client *tls.Config
}

// loadTLS reads f; a nil f means no TLS.
func loadTLS(f *TLSFiles) (*tlsSetup, error) {
	if f == nil {
		return nil, nil
	}
	for field, v := range map[string]string{"TLS.CertFile": f.CertFile, "TLS.KeyFile": f.KeyFile, "TLS.CAFile": f.CAFile} {
		if v == "" {
			return nil, &FieldError{Field: field, Reason: "required with TLS"}
		}
	}
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, &FieldError{Field: "TLS.CertFile", Reason: err.Error()}
	}
	caPEM, err := os.ReadFile(f.CAFile)
	if err != nil {
		return nil, &FieldError{Field: "TLS.CAFile", Reason: err.Error()}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, &FieldError{Field: "TLS.CAFile", Reason: fmt.Sprintf("%s holds no PEM certificate", f.CAFile)}
	}
	base := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	s := &tlsSetup{http: base.Clone(), raft: base.Clone(), client: base.Clone()}
	s.http.ClientCAs, s.http.ClientAuth = pool, tls.VerifyClientCertIfGiven
	s.raft.ClientCAs, s.raft.ClientAuth = pool, tls.RequireAndVerifyClientCert
	s.client.RootCAs = pool
	return s, nil
}

// TLSClientConfig returns the TLS configuration with which this node dials
// other members (its certificate, the cluster's CA), for the
// application's node-to-node requests; nil without TLS.
func (ck *ClusterKit) TLSClientConfig() *tls.Config {
	if ck.tls == nil {
		return nil
	}
	return ck.tls.client.Clone()
}

// Scheme is "https" when the node serves TLS, else "http": the scheme of
// every member's HTTP address.
func (ck *ClusterKit) Scheme() string {
	if ck.tls != nil {
		return "https"
	}
	return "http"
}
