package clusterkit_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"clusterkit.dev/clusterkit/cktest"
)

// Clients that send their headers a byte at a time (slow loris) hold their
// own connections only: other requests are answered at once.
func TestSlowClientsDelayNoOne(t *testing.T) {
	c := cktest.New(t, 1)
	c.WaitConverged()
	addr := c.Member(0).HTTPAddr()
	for i := range 50 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /cluster/join HTTP/1.1\r\nHost: x\r\nX-Slow-%d: ", i)
	}
	for range 5 {
		start := time.Now()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(conn, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if d := time.Since(start); d > time.Second {
			t.Errorf("GET /health took %v beside 50 slow clients", d)
		}
	}
}
