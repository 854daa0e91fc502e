package server

import (
	"net/http"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kit/api"
	"clusterkit.dev/services/kv-sync/internal/store"
)

// Answers are the kit's (package api).
var (
	errBadRequest  = api.BadRequest
	errTooLarge    = api.TooLarge
	errUnavailable = api.Unavailable
	result         = api.Result
)

// The bodies of answers (package api): a write's, a read's, and an
// error's, which carries a tombstone's version on a 404.
type (
	writeAnswer = api.Written[store.Version]
	getAnswer   = api.Value[store.Version]
	errorBody   = api.ErrorBody[store.Version]
)

// writeJSON answers status with v as JSON and this node's map version, and
// returns the status written.
func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) int {
	return api.Write(w, s.ck.Version(), api.JSON(status, v))
}

// writeError answers err: its own status for an *api.Error, 500 otherwise.
// It returns the status written.
func (s *Server) writeError(w http.ResponseWriter, err error) int {
	return api.Write(w, s.ck.Version(), api.ErrorReply(err))
}

// writeNotOwner answers a replica request for a key whose partition this
// node does not own in the role the request needs: the client refreshes its
// map and retries.
func (s *Server) writeNotOwner(w http.ResponseWriter, p *clusterkit.Partition, need string) int {
	return api.Write(w, s.ck.Version(), api.NotOwner(s.ck, p, need))
}
