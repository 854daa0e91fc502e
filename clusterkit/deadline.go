package clusterkit

import (
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// The HTTP server's timeouts. A request's headers must arrive within
// readHeaderTimeout and its body within requestReadTimeout; the library's
// own answers must be written within responseWriteTimeout, and an idle
// keep-alive connection is closed after idleTimeout. A slow or stalled
// client holds its own connection only, for that long.
const (
	readHeaderTimeout    = 10 * time.Second
	requestReadTimeout   = 30 * time.Second
	responseWriteTimeout = 30 * time.Second
	idleTimeout          = 2 * time.Minute
)

// readDeadline bounds the time to read a request's body, the
// application's routes included, and lifts the bound once the body has
// been read: net/http cancels a request's context when a connection read
// fails, a passed deadline included, which must not end a handler that
// runs long on purpose (a partition stream, the long-poll). A handler that
// reads a body for longer extends its own deadline with
// http.NewResponseController(w).
func readDeadline(d time.Duration) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if req.Body == nil || req.Body == http.NoBody || req.ContentLength == 0 {
				return next(c)
			}
			rc := http.NewResponseController(c.Response())
			if rc.SetReadDeadline(time.Now().Add(d)) == nil {
				req.Body = &liftOnEOF{ReadCloser: req.Body, rc: rc}
			}
			return next(c)
		}
	}
}

// liftOnEOF lifts the connection's read deadline when the body ends.
type liftOnEOF struct {
	io.ReadCloser
	rc     *http.ResponseController
	lifted bool
}

func (b *liftOnEOF) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.lifted {
		b.lifted = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// writeDeadline bounds the time to answer one of the library's requests.
func writeDeadline(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		_ = http.NewResponseController(c.Response()).SetWriteDeadline(time.Now().Add(responseWriteTimeout))
		return next(c)
	}
}

// extendWriteDeadline gives a request that waits on purpose (the
// long-poll) d more to wait, on top of the usual bound.
func extendWriteDeadline(c echo.Context, d time.Duration) {
	_ = http.NewResponseController(c.Response()).SetWriteDeadline(time.Now().Add(d + responseWriteTimeout))
}
