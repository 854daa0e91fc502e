package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"clusterkit.dev/clusterkit"
	knode "clusterkit.dev/services/kit/node"
)

// nodeClient posts the batches nodes exchange (forwarded ops, replicated
// writes) over pooled keep-alive HTTP/1.1 connections. A connection
// carries one request at a time, and the calling goroutine writes the
// request and reads the answer itself: net/http's Transport runs two more
// goroutines per connection and hands every request and answer between
// them, which on a busy node costs more CPU than the batch's own work.
type nodeClient struct {
	dialer  net.Dialer
	maxIdle int // idle connections kept per address
	// tls, when not nil, makes every connection TLS (the node's client
	// configuration: the cluster's CA and its certificate); the server
	// name is the address's host.
	tls *tls.Config
	// auth is the Authorization header sent with every request (the
	// cluster token), "" for none.
	auth string

	mu     sync.Mutex
	idle   map[string][]*nodeConn
	closed bool
}

// nodeConn is one connection and its buffers.
type nodeConn struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

// nodeAnswer is the answer to a post.
type nodeAnswer struct {
	status int
	// mapVersion is the answering node's map version (0 if absent).
	mapVersion uint64
	body       []byte
}

// newNodeClient returns a client that dials TLS with tlsConf unless it is
// nil, and sends auth as every request's Authorization header unless it
// is "".
func newNodeClient(tlsConf *tls.Config, auth string) *nodeClient {
	return &nodeClient{
		dialer:  net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second},
		maxIdle: 64,
		tls:     tlsConf,
		auth:    auth,
		idle:    map[string][]*nodeConn{},
	}
}

// maxAnswer bounds an answer's body: a forwarded batch's replies carry at
// most fwdMaxBatch values.
const maxAnswer = fwdMaxBatch*(MaxValueSize*6+4096) + 1<<20

// post sends body to addr+path (over TLS when the client has a TLS
// configuration) with the node-to-node headers and
// returns the answer, read in full. ctx bounds the exchange. A request
// that fails on a reused connection before any answer arrived (the other
// node closed it while it was idle, for instance after a restart) is sent
// once more on a new connection: the batches are safe to repeat, each
// write being merged by version.
func (nc *nodeClient) post(ctx context.Context, addr, path string, from string, mapVersion uint64, body []byte) (nodeAnswer, error) {
	for attempt := 0; ; attempt++ {
		conn, reused, err := nc.get(ctx, addr)
		if err != nil {
			return nodeAnswer{}, err
		}
		a, keep, answered, err := conn.exchange(ctx, addr, path, from, nc.auth, mapVersion, body)
		if err == nil {
			if keep {
				nc.put(addr, conn)
			} else {
				conn.c.Close()
			}
			return a, nil
		}
		conn.c.Close()
		if !reused || answered || attempt > 0 || ctx.Err() != nil {
			return nodeAnswer{}, err
		}
	}
}

// get returns an idle connection to addr, or dials one.
func (nc *nodeClient) get(ctx context.Context, addr string) (*nodeConn, bool, error) {
	nc.mu.Lock()
	if nc.closed {
		nc.mu.Unlock()
		return nil, false, errClosing
	}
	if conns := nc.idle[addr]; len(conns) > 0 {
		conn := conns[len(conns)-1]
		conns[len(conns)-1] = nil
		nc.idle[addr] = conns[:len(conns)-1]
		nc.mu.Unlock()
		return conn, true, nil
	}
	nc.mu.Unlock()
	c, err := nc.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	if nc.tls != nil {
		if c, err = handshake(ctx, c, nc.tls, addr); err != nil {
			return nil, false, err
		}
	}
	return &nodeConn{c: c, br: bufio.NewReaderSize(c, 16<<10), bw: bufio.NewWriterSize(c, 16<<10)}, false, nil
}

// put keeps conn for the next request to addr, or closes it.
func (nc *nodeClient) put(addr string, conn *nodeConn) {
	nc.mu.Lock()
	if !nc.closed && len(nc.idle[addr]) < nc.maxIdle {
		nc.idle[addr] = append(nc.idle[addr], conn)
		conn = nil
	}
	nc.mu.Unlock()
	if conn != nil {
		conn.c.Close()
	}
}

// close closes the idle connections; later posts fail. Connections in use
// are closed when their exchange ends.
func (nc *nodeClient) close() {
	nc.mu.Lock()
	idle := nc.idle
	nc.idle, nc.closed = nil, true
	nc.mu.Unlock()
	for _, conns := range idle {
		for _, conn := range conns {
			conn.c.Close()
		}
	}
}

// exchange writes one request and reads its answer. keep reports whether
// the connection may carry another request, answered whether any byte of
// the answer arrived.
func (conn *nodeConn) exchange(ctx context.Context, addr, path, from, auth string, mapVersion uint64, body []byte) (a nodeAnswer, keep, answered bool, err error) {
	deadline, _ := ctx.Deadline() // zero: none
	if err := conn.c.SetDeadline(deadline); err != nil {
		return a, false, false, err
	}
	// Cancelling ctx interrupts a blocked write or read.
	stop := context.AfterFunc(ctx, func() { _ = conn.c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	w := conn.bw
	w.WriteString("POST ")
	w.WriteString(path)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(addr)
	w.WriteString("\r\nContent-Type: application/octet-stream\r\nContent-Length: ")
	w.WriteString(strconv.Itoa(len(body)))
	w.WriteString("\r\n" + headerForwardedBy + ": ")
	w.WriteString(from)
	w.WriteString("\r\n" + clusterkit.HeaderMapVersion + ": ")
	w.WriteString(strconv.FormatUint(mapVersion, 10))
	if auth != "" {
		w.WriteString("\r\nAuthorization: ")
		w.WriteString(auth)
	}
	w.WriteString("\r\n\r\n")
	w.Write(body)
	if err := w.Flush(); err != nil {
		return a, false, false, ctxErr(ctx, err)
	}
	if _, err := conn.br.Peek(1); err != nil {
		return a, false, false, ctxErr(ctx, err)
	}
	resp, err := http.ReadResponse(conn.br, nil)
	if err != nil {
		return a, false, true, ctxErr(ctx, err)
	}
	defer resp.Body.Close()
	a.status = resp.StatusCode
	a.mapVersion, _ = strconv.ParseUint(resp.Header.Get(clusterkit.HeaderMapVersion), 10, 64)
	if a.body, err = io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1)); err != nil {
		return a, false, true, ctxErr(ctx, err)
	}
	if len(a.body) > maxAnswer {
		return a, false, true, fmt.Errorf("%s answered more than %d bytes", addr, maxAnswer)
	}
	return a, !resp.Close, true, nil
}

// handshake runs the TLS client handshake on c, a connection to addr,
// verifying the peer's certificate for addr's host; it closes c on
// failure.
func handshake(ctx context.Context, c net.Conn, conf *tls.Config, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		c.Close()
		return nil, err
	}
	conf = conf.Clone()
	conf.ServerName = host
	tc := tls.Client(c, conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	return tc, nil
}

// ctxErr prefers ctx's error to the deadline error it caused: the
// connection's deadline is ctx's, and may expire a moment before ctx
// reports it.
func ctxErr(ctx context.Context, err error) error {
	cerr := ctx.Err()
	if d, ok := ctx.Deadline(); cerr == nil && ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(d) {
		cerr = context.DeadlineExceeded
	}
	if cerr != nil {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}

// postBatch posts a batch to addr+path as this node and returns the
// answer of a 200; another status is an error quoting the answer. A batch
// carries the ops of many requests, so no one request's context bounds it:
// the server's does, and timeout.
func (s *Server) postBatch(addr, path string, timeout time.Duration, body []byte) (nodeAnswer, error) {
	ctx, cancel := context.WithTimeout(s.ctx, timeout)
	defer cancel()
	a, err := s.nodes.post(ctx, addr, path, s.self, s.ck.Version(), body)
	if err != nil {
		return a, err
	}
	if a.status != http.StatusOK {
		return a, fmt.Errorf("%s answered %d: %s", addr, a.status, bytes.TrimSpace(a.body[:min(len(a.body), 1024)]))
	}
	return a, nil
}

// send sends one request to node, marked as forwarded by this node and
// with the cluster token.
func (s *Server) send(ctx context.Context, node *clusterkit.Node, method, uri string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := knode.NewRequest(ctx, s.ck, node, method, uri, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set(headerForwardedBy, s.self)
	return s.client.Do(req)
}
