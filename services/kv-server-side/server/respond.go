package server

import (
	"encoding/json"
	"net/http"
	"strconv"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kv-server-side/internal/store"
)

// reply is the answer to a KV request: its status and JSON body. An
// operation builds a reply; the HTTP handler writes it, or, for a forwarded
// request, the primary sends it back to the node that forwarded it, which
// relays it as is.
type reply struct {
	status int
	body   []byte
}

// apiError is a KV API failure: its HTTP status and the message of its
// JSON body, {"error": "..."}.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errBadRequest(msg string) *apiError { return &apiError{http.StatusBadRequest, msg} }
func errTooLarge(msg string) *apiError   { return &apiError{http.StatusRequestEntityTooLarge, msg} }
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

// jsonReply returns a reply of status with v as its JSON body.
func jsonReply(status int, v any) reply {
	b, err := json.Marshal(v)
	if err != nil {
		return reply{http.StatusInternalServerError, []byte(`{"error":"encode answer"}` + "\n")}
	}
	return reply{status, append(b, '\n')}
}

// errReply returns the reply of err: its own status for an *apiError, 500
// otherwise.
func errReply(err error) reply {
	ae, ok := err.(*apiError)
	if !ok {
		ae = &apiError{http.StatusInternalServerError, err.Error()}
	}
	return jsonReply(ae.status, errorBody{Error: ae.msg})
}

// notOwnerReply answers a forwarded request that reached a node which is not
// the key's primary in its map: the forwarder refreshes its map and retries
// instead of forwarding in a loop.
func (s *Server) notOwnerReply(p *clusterkit.Partition) reply {
	body := clusterkit.NotOwnerBody{
		Error:      "this node is not the primary of partition " + strconv.Itoa(p.Index),
		MapVersion: s.ck.Version(),
		Partition:  p.Index,
	}
	if primary := s.ck.GetPrimary(p); primary != nil {
		body.Primary = primary.ID
	}
	return jsonReply(clusterkit.StatusNotOwner, body)
}

// write writes rep with this node's map version, and returns its status. A
// 503 says when to retry.
func (s *Server) write(w http.ResponseWriter, rep reply) int {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set(clusterkit.HeaderMapVersion, strconv.FormatUint(s.ck.Version(), 10))
	if rep.status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write(rep.body)
	return rep.status
}

// writeJSON answers status with v as JSON; writeError answers err.
func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) int {
	return s.write(w, jsonReply(status, v))
}

func (s *Server) writeError(w http.ResponseWriter, err error) int {
	return s.write(w, errReply(err))
}
