package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// Healthcheck asks the node on this host, on HTTP_ADDR's port, for GET
// /health (over HTTPS with the node's TLS files when it has them) and
// returns nil when it answers 200. It is the container health check of a
// scratch image, which has no curl:
//
//	HEALTHCHECK CMD ["/kv-sync", "healthcheck"]
func Healthcheck(environ []string) error {
	var c struct{ Env }
	if err := Load(environ, &c); err != nil {
		return err
	}
	_, port, err := net.SplitHostPort(c.HTTPAddr)
	if err != nil || port == "" {
		return fmt.Errorf("HTTP_ADDR: %q is not host:port or :port", c.HTTPAddr)
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	scheme := "http"
	if c.TLSCAFile != "" {
		pem, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return fmt.Errorf("TLS_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("TLS_CA_FILE: %s holds no PEM certificate", c.TLSCAFile)
		}
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
		scheme = "https"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+net.JoinHostPort("127.0.0.1", port)+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/health answered %s", resp.Status)
	}
	return nil
}
