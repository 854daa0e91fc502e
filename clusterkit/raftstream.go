package clusterkit

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// The raft connection handshake, when the cluster has a token (within
// TLS, when the node has it). Both sides
// prove that they hold it without sending it, each over a nonce of the
// other's choosing, so that a recorded handshake cannot be replayed:
//
//	dialer   -> acceptor: "CKR1" nonceD[32]
//	acceptor -> dialer:   nonceA[32] HMAC(token, "acceptor" nonceD nonceA)
//	dialer   -> acceptor: HMAC(token, "dialer" nonceD nonceA)
//	acceptor -> dialer:   0x01
//
// Then the connection carries raft's RPCs as usual. A side that sees a bad
// proof closes the connection: a node without the token can neither take
// part in raft nor pose as a member to one.
var raftMagic = []byte("CKR1")

const (
	nonceSize = 32
	proofSize = sha256.Size
	// maxHandshakes bounds the handshakes in progress on one listener, so
	// that connections that never speak cannot pile up goroutines.
	maxHandshakes = 64
)

// errRaftAuth is a failed raft handshake: the peer does not hold the
// cluster token (or is not a ClusterKit node).
var errRaftAuth = errors.New("raft handshake: peer does not prove the cluster token")

func raftProof(token []byte, role string, nonceD, nonceA []byte) []byte {
	m := hmac.New(sha256.New, token)
	m.Write([]byte(role))
	m.Write(nonceD)
	m.Write(nonceA)
	return m.Sum(nil)
}

// streamConfig is what secures raft's connections.
type streamConfig struct {
	token   string
	timeout time.Duration // bounds each handshake
	// onRefused counts a handshake refused for the token or the
	// certificate.
	onRefused func()
	// serverTLS and clientTLS, when set, wrap every connection in TLS,
	// the peer's certificate required and verified at both ends.
	serverTLS, clientTLS *tls.Config
}

// streamLayer is raft's network layer: TCP, within TLS when configured,
// with the handshake above when a token is set. It accepts connections in
// a goroutine of its own and handshakes each in another, so that a peer
// that connects and stays silent delays no one; Close ends them all.
type streamLayer struct {
	ln        net.Listener
	advertise net.Addr
	token     []byte
	cfg       streamConfig

	accepted chan net.Conn
	closed   chan struct{}
	slots    chan struct{}

	mu      sync.Mutex
	pending map[net.Conn]struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

func newStreamLayer(bind string, advertise net.Addr, cfg streamConfig) (*streamLayer, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	s := &streamLayer{ln: ln, advertise: advertise, token: []byte(cfg.token), cfg: cfg,
		accepted: make(chan net.Conn), closed: make(chan struct{}), slots: make(chan struct{}, maxHandshakes),
		pending: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

func (s *streamLayer) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			time.Sleep(10 * time.Millisecond) // e.g. out of file descriptors
			continue
		}
		select {
		case s.slots <- struct{}{}:
		case <-s.closed:
			c.Close()
			return
		}
		if !s.track(c) {
			c.Close()
			<-s.slots
			return
		}
		s.wg.Add(1)
		go s.admit(c)
	}
}

// track records a connection in its handshake; false once closed.
func (s *streamLayer) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil {
		return false
	}
	s.pending[c] = struct{}{}
	return true
}

func (s *streamLayer) untrack(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pending, c)
}

// admit handshakes c and hands it to Accept.
func (s *streamLayer) admit(raw net.Conn) {
	defer s.wg.Done()
	c, err := s.accept(raw)
	s.untrack(raw)
	<-s.slots
	if err != nil {
		if s.cfg.onRefused != nil && errors.Is(err, errRaftAuth) {
			s.cfg.onRefused()
		}
		raw.Close()
		return
	}
	select {
	case s.accepted <- c:
	case <-s.closed:
		c.Close()
	}
}

// accept is the acceptor's side of the handshakes.
func (s *streamLayer) accept(raw net.Conn) (net.Conn, error) {
	if err := raw.SetDeadline(time.Now().Add(s.cfg.timeout)); err != nil {
		return nil, err
	}
	c := raw
	if s.cfg.serverTLS != nil {
		tc := tls.Server(raw, s.cfg.serverTLS)
		if err := tc.Handshake(); err != nil {
			return nil, fmt.Errorf("%w: %v", errRaftAuth, err)
		}
		c = tc
	}
	if err := s.proveAccepting(c); err != nil {
		return nil, err
	}
	return c, raw.SetDeadline(time.Time{})
}

// proveAccepting is the acceptor's side of the token handshake.
func (s *streamLayer) proveAccepting(c net.Conn) error {
	if len(s.token) == 0 {
		return nil
	}
	hello := make([]byte, len(raftMagic)+nonceSize)
	if _, err := io.ReadFull(c, hello); err != nil {
		return fmt.Errorf("raft handshake: %w", err)
	}
	if !bytes.Equal(hello[:len(raftMagic)], raftMagic) {
		return errRaftAuth
	}
	nonceD := hello[len(raftMagic):]
	nonceA := make([]byte, nonceSize)
	if _, err := rand.Read(nonceA); err != nil {
		return err
	}
	if _, err := c.Write(append(nonceA, raftProof(s.token, "acceptor", nonceD, nonceA)...)); err != nil {
		return fmt.Errorf("raft handshake: %w", err)
	}
	proof := make([]byte, proofSize)
	if _, err := io.ReadFull(c, proof); err != nil {
		return fmt.Errorf("raft handshake: %w", err)
	}
	if !hmac.Equal(proof, raftProof(s.token, "dialer", nonceD, nonceA)) {
		return errRaftAuth
	}
	if _, err := c.Write([]byte{1}); err != nil {
		return fmt.Errorf("raft handshake: %w", err)
	}
	return nil
}

// Dial connects to a raft peer and, with TLS, checks its certificate and
// presents this node's; with a token, proves it and checks the peer's
// proof.
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	raw, err := net.DialTimeout("tcp", string(address), timeout)
	if err != nil || (len(s.token) == 0 && s.cfg.clientTLS == nil) {
		return raw, err
	}
	c, err := s.dialHandshakes(raw, string(address), timeout)
	if err != nil {
		raw.Close()
		if s.cfg.onRefused != nil && errors.Is(err, errRaftAuth) {
			s.cfg.onRefused()
		}
		return nil, fmt.Errorf("%s: %w", address, err)
	}
	return c, nil
}

func (s *streamLayer) dialHandshakes(raw net.Conn, address string, timeout time.Duration) (net.Conn, error) {
	if timeout <= 0 {
		timeout = s.cfg.timeout
	}
	if err := raw.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	c := raw
	if s.cfg.clientTLS != nil {
		cfg := s.cfg.clientTLS.Clone()
		if host, _, err := net.SplitHostPort(address); err == nil {
			cfg.ServerName = host
		}
		tc := tls.Client(raw, cfg)
		if err := tc.Handshake(); err != nil {
			return nil, fmt.Errorf("%w: %v", errRaftAuth, err)
		}
		c = tc
	}
	if err := s.proveDialling(c); err != nil {
		return nil, err
	}
	return c, raw.SetDeadline(time.Time{})
}

// proveDialling is the dialler's side of the token handshake.
func (s *streamLayer) proveDialling(c net.Conn) error {
	if len(s.token) == 0 {
		return nil
	}
	nonceD := make([]byte, nonceSize)
	if _, err := rand.Read(nonceD); err != nil {
		return err
	}
	if _, err := c.Write(append(append([]byte{}, raftMagic...), nonceD...)); err != nil {
		return fmt.Errorf("raft handshake: %w", err)
	}
	reply := make([]byte, nonceSize+proofSize)
	if _, err := io.ReadFull(c, reply); err != nil {
		return fmt.Errorf("raft handshake: %w", err)
	}
	nonceA := reply[:nonceSize]
	if !hmac.Equal(reply[nonceSize:], raftProof(s.token, "acceptor", nonceD, nonceA)) {
		return errRaftAuth
	}
	if _, err := c.Write(raftProof(s.token, "dialer", nonceD, nonceA)); err != nil {
		return fmt.Errorf("raft handshake: %w", err)
	}
	ok := make([]byte, 1)
	if _, err := io.ReadFull(c, ok); err != nil || ok[0] != 1 {
		return errRaftAuth
	}
	return nil
}

// Accept returns the next connection whose handshake succeeded.
func (s *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.accepted:
		return c, nil
	case <-s.closed:
		return nil, net.ErrClosed
	}
}

// Close stops accepting, ends the handshakes in progress and waits for
// every goroutine of the layer.
func (s *streamLayer) Close() error {
	var err error
	s.once.Do(func() {
		close(s.closed)
		err = s.ln.Close()
		s.mu.Lock()
		for c := range s.pending {
			c.Close()
		}
		s.pending = nil
		s.mu.Unlock()
		s.wg.Wait()
	})
	return err
}

// Addr is the address peers dial: the advertised one.
func (s *streamLayer) Addr() net.Addr { return s.advertise }
