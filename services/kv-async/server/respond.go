package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kv-async/internal/store"
)

// httpError is an error answer of the KV API: a JSON {"error": ...} body,
// or a clusterkit.NotOwnerBody for clusterkit.StatusNotOwner.
type httpError struct {
	code     int
	msg      string
	notOwner *clusterkit.NotOwnerBody
}

func (e *httpError) Error() string { return fmt.Sprintf("%d %s", e.code, e.msg) }

func errorf(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

// notOwner is the StatusNotOwner answer for partition p of the current map.
func (s *Server) notOwner(p *clusterkit.Partition, why string) error {
	body := &clusterkit.NotOwnerBody{Error: why, MapVersion: s.ck.Version(), Partition: p.Index, Primary: p.PrimaryNode}
	return &httpError{code: clusterkit.StatusNotOwner, msg: why, notOwner: body}
}

// statusOf returns the HTTP status an error is answered with.
func statusOf(err error) int {
	var he *httpError
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &he):
		return he.code
	case errors.Is(err, clusterkit.ErrNoPartitionMap), errors.Is(err, store.ErrClosed):
		return http.StatusServiceUnavailable
	case errors.Is(err, store.ErrDiskFull):
		return http.StatusInsufficientStorage
	}
	return http.StatusInternalServerError
}

// writeError answers err, unless an answer was already started.
func writeError(w http.ResponseWriter, err error) {
	if er, ok := w.(*echo.Response); ok && er.Committed {
		return
	}
	code := statusOf(err)
	var he *httpError
	if errors.As(err, &he) && he.notOwner != nil {
		writeJSON(w, code, he.notOwner)
		return
	}
	msg := err.Error()
	if he != nil {
		msg = he.msg
	}
	writeJSON(w, code, clusterkit.ErrorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
