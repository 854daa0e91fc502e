package clusterkit

import (
	"net/http"
	"net/http/httptest"
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
