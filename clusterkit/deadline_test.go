package clusterkit

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

// The deadlines reach the connection through echo's response: setting
// them is supported, so a stalled client is cut off.
func TestDeadlinesReachTheConnection(t *testing.T) {
	e := echo.New()
	errs := make(chan error, 2)
	e.GET("/", func(c echo.Context) error {
		rc := http.NewResponseController(c.Response())
		errs <- rc.SetReadDeadline(time.Now().Add(time.Minute))
		errs <- rc.SetWriteDeadline(time.Now().Add(time.Minute))
		return c.NoContent(http.StatusNoContent)
	})
	srv := httptest.NewServer(e)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("deadline through echo's response: %v", err)
		}
	}
}

// A body must arrive within the read deadline; a request without one has
// none (its headers had theirs), and a handler may run past the deadline
// with its context intact: net/http cancels the context of a request
// whose connection read fails, the deadline's timeout included.
func TestReadDeadlineBoundsBodiesOnly(t *testing.T) {
	e := echo.New()
	e.Pre(readDeadline(100 * time.Millisecond))
	done := make(chan error, 1)
	handler := func(c echo.Context) error {
		if _, err := io.ReadAll(c.Request().Body); err != nil {
			return err
		}
		select {
		case <-c.Request().Context().Done():
			done <- c.Request().Context().Err()
		case <-time.After(500 * time.Millisecond):
			done <- nil
		}
		return c.NoContent(http.StatusNoContent)
	}
	e.GET("/", handler)
	e.POST("/", handler)
	srv := httptest.NewServer(e)
	defer srv.Close()
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		req, _ := http.NewRequest(method, srv.URL, nil)
		if method == http.MethodPost {
			req, _ = http.NewRequest(method, srv.URL, strings.NewReader("body"))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if err := <-done; err != nil {
			t.Fatalf("%s: context of a handler running past the deadline: %v", method, err)
		}
	}

	// A body that stalls is cut off at the deadline.
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, _ = io.ReadAll(conn) // the server closes the connection
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a stalled body held its connection for %v", d)
	}
}
