// Package api holds what the services' HTTP APIs share: the error writer
// (Error, Reply, Write), the bodies of answers (Written, Value,
// ErrorBody), the middleware that serves a service's routes ahead of the
// library's router (Intercept), the readers of a request's body and query
// (ReadBody, QueryKey, QueryBool, ReadQuery), the wait for the map a
// request was routed with (AwaitMap), and the request metrics
// (RequestMetrics). Every answer is JSON and carries the node's map
// version (clusterkit.HeaderMapVersion), so that a client learns of a
// newer map from any answer.
package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"clusterkit.dev/clusterkit"
)

// Error is an API failure: its HTTP status and the message of its JSON
// body, {"error": "..."}.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// BadRequest, TooLarge, Unavailable and Unauthorized are the failures of
// bad input (400), a body or field over its limit (413), a node that
// cannot serve the request now (503: the client retries or asks another
// node) and a request without the cluster token (401).
func BadRequest(msg string) *Error  { return &Error{http.StatusBadRequest, msg} }
func TooLarge(msg string) *Error    { return &Error{http.StatusRequestEntityTooLarge, msg} }
func Unavailable(msg string) *Error { return &Error{http.StatusServiceUnavailable, msg} }
func Unauthorized() *Error {
	return &Error{http.StatusUnauthorized, clusterkit.ErrUnauthorized.Error()}
}

// errorBody is the body of an error answer.
type errorBody struct {
	Error string `json:"error"`
}

// Reply is an answer: its status and JSON body. An operation can build a
// Reply and hand it on (a node relays another's answer as is) before it is
// written.
type Reply struct {
	Status int
	Body   []byte
}

// JSON returns the reply of status with v as its JSON body.
func JSON(status int, v any) Reply {
	b, err := json.Marshal(v)
	if err != nil {
		return Reply{http.StatusInternalServerError, []byte(`{"error":"encode answer"}` + "\n")}
	}
	return Reply{status, append(b, '\n')}
}

// ErrorReply returns the reply of err: its own status for an *Error (err
// or one it wraps), 500 otherwise.
func ErrorReply(err error) Reply {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{http.StatusInternalServerError, err.Error()}
	}
	return JSON(e.Status, errorBody{Error: e.Msg})
}

// Write writes rep with mapVersion, the node's map version, and returns
// its status. A 503 says when to retry (Retry-After: 1).
func Write(w http.ResponseWriter, mapVersion uint64, rep Reply) int {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set(clusterkit.HeaderMapVersion, strconv.FormatUint(mapVersion, 10))
	if rep.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	w.WriteHeader(rep.Status)
	_, _ = w.Write(rep.Body)
	return rep.Status
}

// NotOwner returns the reply to a request for partition p that reached a
// node which is not, in its map of version mapVersion, what the request
// needs (need: "the primary", "an owner"...): the sender refreshes its map
// and retries.
func NotOwner(ck *clusterkit.ClusterKit, p *clusterkit.Partition, need string) Reply {
	body := clusterkit.NotOwnerBody{
		Error:      "this node is not " + need + " of partition " + strconv.Itoa(p.Index),
		MapVersion: ck.Version(),
		Partition:  p.Index,
	}
	if primary := ck.GetPrimary(p); primary != nil {
		body.Primary = primary.ID
	}
	return JSON(clusterkit.StatusNotOwner, body)
}
