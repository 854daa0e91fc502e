package clusterkit

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// The HTTP server's timeouts. A request's headers must arrive within
// readHeaderTimeout and the whole request within requestReadTimeout; the
// library's own answers must be written within responseWriteTimeout, and
// an idle keep-alive connection is closed after idleTimeout. A slow or
// stalled client holds its own connection only, for that long.
const (
	readHeaderTimeout    = 10 * time.Second
	requestReadTimeout   = 30 * time.Second
	responseWriteTimeout = 30 * time.Second
	idleTimeout          = 2 * time.Minute
)

// readDeadline bounds the time to read every request, the application's
// included: a handler that reads for longer (a long upload) extends its
// own with http.NewResponseController(w).SetReadDeadline.
func readDeadline(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		_ = http.NewResponseController(c.Response()).SetReadDeadline(time.Now().Add(requestReadTimeout))
		return next(c)
	}
}

// writeDeadline bounds the time to answer one of the library's requests.
func writeDeadline(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		_ = http.NewResponseController(c.Response()).SetWriteDeadline(time.Now().Add(responseWriteTimeout))
		return next(c)
	}
}

// extendDeadlines gives a request that waits on purpose (the long-poll)
// d more to wait, on top of the usual bounds. The read deadline goes too:
// when it passes, net/http cancels the request's context.
func extendDeadlines(c echo.Context, d time.Duration) {
	rc := http.NewResponseController(c.Response())
	_ = rc.SetReadDeadline(time.Now().Add(d + requestReadTimeout))
	_ = rc.SetWriteDeadline(time.Now().Add(d + responseWriteTimeout))
}
