package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// Node-to-node requests need the cluster token when the node has one
// (clusterkit.Options.ClusterToken): replication (/kv/internal/replicate), forwarded
// batches (/kv/internal/forward), partition copies (/kv/internal/stream), a node's local
// copy of a key (/kv/get?local=...) and any request marked as forwarded by
// another node (X-Kv-Forwarded-By). Without it they are answered 401 with a
// JSON error, change nothing, and are counted in
// clusterkit_unauthorized_requests_total. The application API (/kv/set,
// /kv/get, /kv/delete, /kv/key without those marks) stays open: it is what
// clients call, and it changes data only through the primary's checks.

// nodeToNode reports whether r, not under /kv/internal/ (api.Intercept
// guards those), is a request only another member sends.
func nodeToNode(r *http.Request) bool {
	if r.Header.Get(headerForwardedBy) != "" {
		return true
	}
	return r.URL.Path == "/kv/get" && r.URL.Query().Has("local")
}

// authHeader returns the Authorization header value this node sends to
// other members: the cluster token, "" when there is none.
func (s *Server) authHeader() string {
	req := &http.Request{Header: http.Header{}}
	s.ck.AuthorizeRequest(req)
	return req.Header.Get(echo.HeaderAuthorization)
}
