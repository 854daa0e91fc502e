package clusterkit

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"clusterkit.dev/clusterkit/certs"
)

func newTestStream(t *testing.T, token string, refused func()) *streamLayer {
	t.Helper()
	s, err := newStreamLayer("127.0.0.1:0", nil, streamConfig{token: token, timeout: 2 * time.Second, onRefused: refused})
	if err != nil {
		t.Fatal(err)
	}
	s.advertise = s.ln.Addr()
	t.Cleanup(func() { s.Close() })
	return s
}

// Both ends prove the token: a dialler with the same token gets a working
// connection; one with another token, or none, is refused on both sides.
func TestStreamHandshake(t *testing.T) {
	refusals := make(chan struct{}, 10)
	srv := newTestStream(t, "the-cluster-token-0001", func() { refusals <- struct{}{} })
	addr := raft.ServerAddress(srv.Addr().String())
	go func() {
		for {
			c, err := srv.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }() // echo
		}
	}()

	good := newTestStream(t, "the-cluster-token-0001", nil)
	c, err := good.Dial(addr, time.Second)
	if err != nil {
		t.Fatalf("dial with the token: %v", err)
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo after the handshake: %q %v", buf, err)
	}
	c.Close()

	// The dialler finds the acceptor's proof wrong first, and counts it.
	badRefusals := 0
	bad := newTestStream(t, "another-cluster-token-2", func() { badRefusals++ })
	if _, err := bad.Dial(addr, time.Second); !errors.Is(err, errRaftAuth) || badRefusals != 1 {
		t.Errorf("dial with another token: %v (%d counted), want errRaftAuth counted once", err, badRefusals)
	}
	// A peer that expects no handshake sends raft's RPC at once: refused.
	plain, err := net.Dial("tcp", string(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.Write(make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	_ = plain.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := plain.Read(buf); err == nil && n > 0 {
		// The acceptor answered nothing but its nonce and proof, and
		// then closed: nothing of raft.
		if _, err := io.ReadAll(plain); err != nil {
			t.Fatalf("plain peer: %v", err)
		}
	}
	select {
	case <-refusals:
	case <-time.After(2 * time.Second):
		t.Error("a peer without the handshake was not refused")
	}
}

// Peers that connect and never speak delay no one, and Close ends their
// handshakes and every goroutine of the layer.
func TestStreamSilentPeersDelayNoOne(t *testing.T) {
	before := runtime.NumGoroutine()
	srv, err := newStreamLayer("127.0.0.1:0", nil, streamConfig{token: "the-cluster-token-0001", timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	addr := raft.ServerAddress(srv.ln.Addr().String())
	go func() {
		for {
			c, err := srv.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	for range 20 {
		c, err := net.Dial("tcp", string(addr))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	good := newTestStream(t, "the-cluster-token-0001", nil)
	start := time.Now()
	c, err := good.Dial(addr, time.Second)
	if err != nil {
		t.Fatalf("dial past 20 silent peers: %v", err)
	}
	c.Close()
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("handshake took %v behind silent peers", d)
	}

	start = time.Now()
	srv.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v with silent peers in their handshakes", d)
	}
	good.Close()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Close, %d before", n, before)
	}
}

// With TLS, raft needs a certificate from the cluster's CA at both ends:
// a dialler whose certificate another CA signed is refused, and so is one
// that speaks plain TCP; a member's certificate goes through, and the
// token handshake runs within TLS.
func TestStreamMutualTLS(t *testing.T) {
	setup := func(ca *certs.CA) *tlsSetup {
		t.Helper()
		dir := t.TempDir()
		files, err := ca.WriteFiles(dir, []string{"node"}, nil, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		s, err := loadTLS(&TLSFiles{CertFile: files["node"].CertFile, KeyFile: files["node"].KeyFile, CAFile: filepath.Join(dir, "ca.pem")})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ca, err := certs.NewCA("cluster", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := certs.NewCA("other", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	mine, theirs := setup(ca), setup(other)
	stream := func(s *tlsSetup, refused func()) *streamLayer {
		l, err := newStreamLayer("127.0.0.1:0", nil, streamConfig{token: "the-cluster-token-0001", timeout: 2 * time.Second,
			onRefused: refused, serverTLS: s.raft, clientTLS: s.client})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	refusals := make(chan struct{}, 10)
	srv := stream(mine, func() { refusals <- struct{}{} })
	go func() {
		for {
			c, err := srv.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	addr := raft.ServerAddress(srv.ln.Addr().String())

	c, err := stream(mine, nil).Dial(addr, time.Second)
	if err != nil {
		t.Fatalf("a member's dial: %v", err)
	}
	if _, ok := c.(*tls.Conn); !ok {
		t.Errorf("a member's connection is a %T, not TLS", c)
	}
	c.Close()
	if _, err := stream(theirs, nil).Dial(addr, time.Second); !errors.Is(err, errRaftAuth) {
		t.Errorf("dial with another CA's certificate: %v, want errRaftAuth", err)
	}
	plain := newTestStream(t, "the-cluster-token-0001", nil)
	if _, err := plain.Dial(addr, time.Second); err == nil {
		t.Error("a dial without TLS went through")
	}
	for i := range 2 {
		select {
		case <-refusals:
		case <-time.After(2 * time.Second):
			t.Fatalf("refusal %d of 2 not counted", i+1)
		}
	}
}
