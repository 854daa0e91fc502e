package server

import (
	"encoding/json"
	"net/http"
	"strconv"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kv-sync/internal/store"
)

// apiError is a KV API failure: its HTTP status and the message of its
// JSON body, {"error": "..."}.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errBadRequest(msg string) *apiError { return &apiError{http.StatusBadRequest, msg} }
func errTooLarge(msg string) *apiError   { return &apiError{http.StatusRequestEntityTooLarge, msg} }
func errUnauthorized() *apiError {
	return &apiError{http.StatusUnauthorized, clusterkit.ErrUnauthorized.Error()}
}
func errUnavailable(msg string) *apiError {
	return &apiError{http.StatusServiceUnavailable, msg}
}

// errorBody is the body of every error answer; Version is set on a 404 of a
// local read that found a tombstone, so that a quorum read can compare it.
type errorBody struct {
	Error   string         `json:"error"`
	Version *store.Version `json:"version,omitempty"`
}

// result returns the metrics label of an answer's status.
func result(status int) string {
	switch {
	case status < 300:
		return resultOK
	case status == http.StatusNotFound:
		return resultNotFound
	case status == http.StatusRequestEntityTooLarge:
		return resultTooLarge
	case status == clusterkit.StatusNotOwner:
		return resultNotOwner
	case status == http.StatusServiceUnavailable, status == http.StatusGatewayTimeout:
		return resultUnavailable
	case status < 500:
		return resultBadRequest
	}
	return resultError
}

// writeJSON answers status with v as JSON and this node's map version, and
// returns the status written.
func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"encode answer"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set(clusterkit.HeaderMapVersion, strconv.FormatUint(s.ck.Version(), 10))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	return status
}

// writeError answers err: its own status for an *apiError, 500 otherwise.
// It returns the status written.
func (s *Server) writeError(w http.ResponseWriter, err error) int {
	ae, ok := err.(*apiError)
	if !ok {
		ae = &apiError{http.StatusInternalServerError, err.Error()}
	}
	if ae.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	return s.writeJSON(w, ae.status, errorBody{Error: ae.msg})
}

// writeNotOwner answers a replica request for a key whose partition this
// node does not own in the role the request needs: the client refreshes its
// map and retries.
func (s *Server) writeNotOwner(w http.ResponseWriter, p *clusterkit.Partition, need string) int {
	body := clusterkit.NotOwnerBody{
		Error:      "this node is not " + need + " of partition " + strconv.Itoa(p.Index),
		MapVersion: s.ck.Version(),
		Partition:  p.Index,
	}
	if primary := s.ck.GetPrimary(p); primary != nil {
		body.Primary = primary.ID
	}
	return s.writeJSON(w, clusterkit.StatusNotOwner, body)
}
