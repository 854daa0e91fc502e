package e2e_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"clusterkit.dev/clusterkit/certs"
	"clusterkit.dev/e2e"
)

// Host ports of the secured project, apart from the other tests' and from
// a stack a user runs.
const (
	securePortPrefix = "291"
	securePromPort   = "29190"
	secureKeys       = 200
)

// TestComposeSecureStack brings up the secured variant of the stack
// (compose.yaml with compose.secure.yaml: the cluster token from a Compose
// secret, mutual TLS, TOKEN_FOR_READS) for kv-sync's 10-node cluster, with
// a CA, node certificates and a token made for the test, under a project
// of its own. Once every container is healthy (its health check speaks
// HTTPS) it checks that plain HTTP is refused and HTTPS with the CA works;
// that a join, a versioned write and a read of the map without the token
// get 401 with a JSON error and change nothing; that writes and reads of
// the KV API over HTTPS succeed; and that Prometheus scrapes all ten nodes
// over HTTPS with the token. It removes the project, even when it fails.
func TestComposeSecureStack(t *testing.T) {
	ctx := context.Background()
	root, promImage := prepare(t)
	s := e2e.Strategies[0]
	if s.Name != "sync" {
		t.Fatalf("the first strategy is %s, want sync", s.Name)
	}
	s.PortPrefix = securePortPrefix

	dir, token, tlsConf := secrets(t, s)
	p := &e2e.Project{
		Name:    "ck-e2e-secure",
		Root:    root,
		Compose: append(e2e.ComposeCommand(ctx), "-f", "compose.yaml", "-f", "compose.secure.yaml"),
		Env: []string{
			"COMPOSE_PROFILES=" + s.Name,
			"CERTS_DIR=" + dir,
			"PROMETHEUS_IMAGE=" + promImage,
			"PROMETHEUS_PORT=" + securePromPort,
			s.PortEnv + "=" + s.PortPrefix,
		},
		Log: t.Logf,
	}
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	start := time.Now()
	up(t, ctx, p)
	waitHealthy(t, ctx, p, s)
	t.Logf("%s: 10 nodes healthy over HTTPS %.1fs after up", s.Service, time.Since(start).Seconds())

	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf}}
	kv := e2e.NewKV(s)
	kv.HC, kv.Scheme, kv.Token = hc, "https", token
	version := waitSameMap(t, ctx, kv, nil)

	node := s.HostAddr(1)
	// Plain HTTP to the node's port: Go's server answers a TLS port's
	// plaintext with a 400, and serves nothing.
	if code, body, err := call(ctx, http.DefaultClient, http.MethodGet, "http://"+node+"/health", "", nil); err == nil && code != http.StatusBadRequest {
		t.Errorf("plain HTTP GET /health: %d %s, want an error or 400", code, body)
	}
	// HTTPS without the CA: the node's certificate does not verify.
	if code, _, err := call(ctx, &http.Client{Timeout: 5 * time.Second}, http.MethodGet, "https://"+node+"/health", "", nil); err == nil {
		t.Errorf("HTTPS without the cluster's CA: %d, want a certificate error", code)
	}
	if code, body, err := call(ctx, hc, http.MethodGet, "https://"+node+"/health", "", nil); err != nil || code != http.StatusOK {
		t.Errorf("HTTPS GET /health with the CA: %d %s %v, want 200", code, body, err)
	}

	// Without the token: 401 with a JSON error, wrong token alike.
	join := map[string]any{"id": "intruder", "http_addr": "intruder:8080", "raft_addr": "intruder:9080", "weight": 1}
	evil := map[string]any{"key": "e2e-evil", "value": "evil", "version": map[string]uint64{"counter": 1 << 62, "writer": 1}}
	for _, tc := range []struct {
		name, method, path, token string
		body                      any
	}{
		{"join", http.MethodPost, "/cluster/join", "", join},
		{"join with a wrong token", http.MethodPost, "/cluster/join", "wrong-" + token, join},
		{"versioned write", http.MethodPost, "/kv/set", "", evil},
		{"map read (TOKEN_FOR_READS)", http.MethodGet, "/cluster", "", nil},
		{"metrics (TOKEN_FOR_READS)", http.MethodGet, "/metrics", "", nil},
	} {
		code, body, err := call(ctx, hc, tc.method, "https://"+node+tc.path, tc.token, tc.body)
		var e struct {
			Error string `json:"error"`
		}
		if err != nil || code != http.StatusUnauthorized || json.Unmarshal(body, &e) != nil || e.Error == "" {
			t.Errorf("%s without the token: %d %s %v, want 401 with a JSON error", tc.name, code, body, err)
		}
	}
	// Nothing changed: the same map, ten nodes, no intruder; the versioned
	// write stored nothing.
	m, err := kv.Map(ctx, 2)
	if err != nil {
		t.Fatalf("GET /cluster with the token: %v", err)
	}
	if m.Version != version || len(m.Nodes) != e2e.Nodes {
		t.Errorf("after the refused join: map version %d with %d nodes, want %d with %d", m.Version, len(m.Nodes), version, e2e.Nodes)
	}
	var got struct {
		Value string `json:"value"`
	}
	if err := kv.GetJSON(ctx, 3, "/kv/get?key=e2e-evil", &got); !e2e.IsNotFound(err) {
		t.Errorf("after the refused versioned write: get e2e-evil = %q, %v; want not found", got.Value, err)
	}

	// The KV API over HTTPS, through every node in turn.
	values := make(map[string]string, secureKeys)
	for i := range secureKeys {
		values[fmt.Sprintf("e2e-secure-%03d", i)] = fmt.Sprintf("value-%d", i)
	}
	parallel(t, values, func(key, value string) error {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return kv.Set(ctx, key, value)
	})
	checkAll(t, ctx, kv, values, "over HTTPS")

	// The refusals were counted.
	_, metrics, err := call(ctx, hc, http.MethodGet, "https://"+node+"/metrics", token, nil)
	if err != nil || !bytes.Contains(metrics, []byte(`clusterkit_unauthorized_requests_total{route="/cluster/join"} 2`)) {
		t.Errorf("node 1's /metrics does not count the two refused joins (%v)", err)
	}

	prom := &e2e.Prometheus{Addr: "127.0.0.1:" + securePromPort, HC: &http.Client{Timeout: 5 * time.Second}}
	waitScraped(t, ctx, prom, s)
	t.Logf("Prometheus scrapes all %d %s nodes over HTTPS with the token; %.1fs after up", e2e.Nodes, s.Service, time.Since(start).Seconds())
}

// secrets writes, into a directory of the test, a CA with a certificate
// for every node of s, and a token file, as make up-secure does. It
// returns the directory, the token and a TLS configuration trusting the
// CA.
func secrets(t *testing.T, s e2e.Strategy) (dir, token string, conf *tls.Config) {
	t.Helper()
	dir = t.TempDir()
	ca, err := certs.NewCA("e2e CA", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var nodes []string
	for k := 1; k <= e2e.Nodes; k++ {
		nodes = append(nodes, s.NodeService(k))
	}
	if _, err := ca.WriteFiles(dir, nodes, nil, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	token = fmt.Sprintf("e2e-%x-%x", time.Now().UnixNano(), os.Getpid())
	if err := os.WriteFile(filepath.Join(dir, "cluster-token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, token, &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
}

// call sends one request, with the token when it is set and body as JSON
// when it is not nil, and returns the answer's status and body.
func call(ctx context.Context, hc *http.Client, method, url, token string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, bytes.TrimSpace(b), err
}
