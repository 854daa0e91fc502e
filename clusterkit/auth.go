package clusterkit

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// bearer is the scheme of the Authorization header that carries the
// cluster token.
const bearer = "Bearer "

// RequireToken is middleware that refuses a request without the cluster
// token with 401 and a JSON error, counting it in
// clusterkit_unauthorized_requests_total; with no ClusterToken set it lets
// every request through. The library puts it on its own state-changing
// routes; an application puts it on its node-to-node routes (replication,
// forwarding, streams), or calls CheckToken where it routes requests
// itself, and sends the token with AuthorizeRequest.
func (ck *ClusterKit) RequireToken() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if ck.opts.ClusterToken == "" {
			return next
		}
		return func(c echo.Context) error {
			if !ck.CheckToken(c.Request(), c.Path()) {
				return echo.NewHTTPError(http.StatusUnauthorized, ErrUnauthorized.Error())
			}
			return next(c)
		}
	}
}

// ErrUnauthorized is the refusal of a request without the cluster token.
var ErrUnauthorized = errors.New("missing or wrong cluster token (Authorization: Bearer <token>)")

// CheckToken reports whether r carries the cluster token, comparing in
// constant time; with no ClusterToken set every request passes. A refusal
// is counted in clusterkit_unauthorized_requests_total{route}.
func (ck *ClusterKit) CheckToken(r *http.Request, route string) bool {
	if ck.opts.ClusterToken == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get(echo.HeaderAuthorization), bearer)
	// Hashing both sides first makes the comparison's time independent of
	// the token's length too.
	h, want := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(ck.opts.ClusterToken))
	if !ok || subtle.ConstantTimeCompare(h[:], want[:]) != 1 {
		ck.metrics.unauthorized.WithLabelValues(route).Inc()
		return false
	}
	return true
}

// readAuth guards the routes that read the cluster's state: the token is
// needed there only with TokenForReads.
func (ck *ClusterKit) readAuth() echo.MiddlewareFunc {
	if !ck.opts.TokenForReads {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	return ck.RequireToken()
}

// AuthorizeRequest adds the cluster token, if there is one, to a request
// this node sends to another member.
func (ck *ClusterKit) AuthorizeRequest(req *http.Request) {
	if ck.opts.ClusterToken != "" {
		req.Header.Set(echo.HeaderAuthorization, bearer+ck.opts.ClusterToken)
	}
}
