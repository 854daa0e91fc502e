package clusterkit

import (
	"fmt"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"
)

// leaderOnly wraps a read-only handler that must run on the leader (it
// uses the leader's view of liveness and time, as the controller does): on
// a follower the request, query included, is passed to the leader and its
// answer returned as is.
func (ck *ClusterKit) leaderOnly(h echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if ck.IsLeader() {
			return h(c)
		}
		if c.Request().Header.Get(forwardedHeader) != "" {
			return fmt.Errorf("forwarded request reached a follower: %w", ErrNotLeader)
		}
		leader := ck.Leader()
		if leader == nil {
			return ErrNoLeader
		}
		req, err := http.NewRequestWithContext(c.Request().Context(), http.MethodGet,
			"http://"+leader.IP+c.Request().URL.RequestURI(), nil)
		if err != nil {
			return err
		}
		req.Header.Set(forwardedHeader, ck.opts.NodeID)
		// The caller's context bounds the wait, not the client's timeout:
		// a plan of a large change takes seconds.
		resp, err := (&http.Client{Transport: ck.client.Transport}).Do(req)
		if err != nil {
			return fmt.Errorf("forward to leader %s: %v: %w", leader.ID, err, ErrNoLeader)
		}
		defer resp.Body.Close()
		c.Response().Header().Set(echo.HeaderContentType, resp.Header.Get(echo.HeaderContentType))
		c.Response().WriteHeader(resp.StatusCode)
		_, err = io.Copy(c.Response(), resp.Body)
		return err
	}
}
