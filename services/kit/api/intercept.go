package api

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"clusterkit.dev/clusterkit"
)

// Prefix is the path prefix of the services' routes; node-to-node routes
// are under InternalPrefix.
const (
	Prefix         = "/kv/"
	InternalPrefix = "/kv/internal/"
)

// Intercept returns the middleware that serves the routes under Prefix
// with h, ahead of the library's router (install it with ck.Echo().Pre),
// and hands every other request on. h applies its own body limits: the
// library caps its own request bodies at 1 MiB, less than a 1 MiB value in
// its JSON envelope.
//
// A request for which guarded returns true (every route under
// InternalPrefix, and whatever else the service names) needs the cluster
// token when the node has one: without it, it is answered 401 with a JSON
// error, changes nothing, and is counted in
// clusterkit_unauthorized_requests_total{route}.
func Intercept(ck *clusterkit.ClusterKit, h http.Handler, guarded func(*http.Request) bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if !strings.HasPrefix(r.URL.Path, Prefix) {
				return next(c)
			}
			w := c.Response().Writer
			if (strings.HasPrefix(r.URL.Path, InternalPrefix) || guarded(r)) && !ck.CheckToken(r, r.URL.Path) {
				Write(w, ck.Version(), ErrorReply(Unauthorized()))
				return nil
			}
			h.ServeHTTP(w, r)
			return nil
		}
	}
}
