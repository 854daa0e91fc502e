package node

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/certs"
	"clusterkit.dev/clusterkit/cktest"
)

type closer struct{ closed atomic.Bool }

func (c *closer) Close() error { c.closed.Store(true); return nil }

// A node runs, answers the health check (over HTTPS with TLS_DIR, with the
// token from its file), and on cancellation stops and closes the service.
func TestRunAndHealthcheck(t *testing.T) {
	ca, err := certs.NewCA("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := ca.WriteFiles(dir, []string{"n1"}, nil, time.Hour); err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("a-token-of-enough-length"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, extra := range map[string][]string{
		"plain":     nil,
		"tls+token": {"TLS_DIR=" + dir, "CLUSTER_TOKEN_FILE=" + token},
	} {
		t.Run(name, func(t *testing.T) {
			environ := append([]string{"NODE_ID=n1", "HTTP_ADDR=" + cktest.FreeAddr(t), "RAFT_ADDR=" + cktest.FreeAddr(t),
				"BOOTSTRAP=true", "DATA_DIR=" + t.TempDir(), "LOG_LEVEL=warn"}, extra...)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			svc := &closer{}
			var scheme atomic.Value
			done := make(chan error, 1)
			var cfg struct{ Env }
			go func() {
				done <- Run(ctx, "test", environ, &cfg, func(ck *clusterkit.ClusterKit, _ *slog.Logger) (io.Closer, error) {
					scheme.Store(ck.Scheme())
					return svc, nil
				})
			}()
			deadline := time.Now().Add(10 * time.Second)
			for err := Healthcheck(environ); err != nil; err = Healthcheck(environ) {
				if time.Now().After(deadline) {
					t.Fatalf("never healthy: %v", err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if want := map[bool]string{true: "https", false: "http"}[extra != nil]; scheme.Load() != want {
				t.Errorf("scheme %v, want %s", scheme.Load(), want)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run: %v", err)
			}
			if !svc.closed.Load() {
				t.Error("the service was not closed")
			}
			if err := Healthcheck(environ); err == nil {
				t.Error("healthy after the node stopped")
			}
		})
	}
}
