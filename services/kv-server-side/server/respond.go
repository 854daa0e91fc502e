package server

import (
	"net/http"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kit/api"
	"clusterkit.dev/services/kv-server-side/internal/store"
)

// Answers are the kit's (package api): an operation builds a reply; the
// HTTP handler writes it, or, for a forwarded request, the primary sends
// it back to the node that forwarded it, which relays it as is.
type (
	reply    = api.Reply
	apiError = api.Error
)

var (
	errBadRequest  = api.BadRequest
	errTooLarge    = api.TooLarge
	errUnavailable = api.Unavailable
	jsonReply      = api.JSON
	errReply       = api.ErrorReply
	result         = api.Result
)

// The bodies of answers (package api): a write's, a read's, and an
// error's, which carries a tombstone's version on a 404.
type (
	writeAnswer = api.Written[store.Version]
	getAnswer   = api.Value[store.Version]
	errorBody   = api.ErrorBody[store.Version]
)

// notOwnerReply answers a forwarded request that reached a node which is not
// the key's primary in its map: the forwarder refreshes its map and retries
// instead of forwarding in a loop.
func (s *Server) notOwnerReply(p *clusterkit.Partition) reply {
	return api.NotOwner(s.ck, p, "the primary")
}

// write writes rep with this node's map version, and returns its status.
func (s *Server) write(w http.ResponseWriter, rep reply) int {
	return api.Write(w, s.ck.Version(), rep)
}

// writeError answers err.
func (s *Server) writeError(w http.ResponseWriter, err error) int {
	return s.write(w, errReply(err))
}
