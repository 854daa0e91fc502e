package client

import (
	"errors"
	"fmt"
	"net/http"

	"clusterkit.dev/clusterkit/wire"
)

// Sentinel errors of the client. Compare with errors.Is.
var (
	// ErrClosed is returned by methods that need the network after Close.
	ErrClosed = errors.New("client: closed")
	// ErrNoSeeds is returned by New when it is given no seed address.
	ErrNoSeeds = errors.New("client: no seed address")
	// ErrNoPrimary is returned by Route for a partition that has no primary
	// in the client's map, for example while a dead primary is being
	// replaced. The returned Route still lists the other owners.
	ErrNoPrimary = errors.New("client: partition has no primary")
	// ErrNoTopology is returned when no reachable node has a usable
	// partition map (the cluster is still forming, or every node is down).
	ErrNoTopology = errors.New("client: no partition map")
)

// NotOwnerError is a wire.StatusNotOwner (421) answer: the node at
// Addr does not own the key's partition in the role the request needed.
// WithRetry refreshes the map and retries once when MapVersion is newer
// than the map the request was routed with.
type NotOwnerError struct {
	// Addr is the host:port of the node that answered.
	Addr string
	// MapVersion is the answering node's map version, from the body or,
	// failing that, from the wire.HeaderMapVersion header.
	MapVersion uint64
	// Body is the decoded answer (zero if the body was not a
	// wire.NotOwnerBody).
	Body wire.NotOwnerBody
}

func (e *NotOwnerError) Error() string {
	msg := e.Body.Error
	if msg == "" {
		msg = "not owner"
	}
	return fmt.Sprintf("client: %s answered %d (map version %d): %s", e.Addr, wire.StatusNotOwner, e.MapVersion, msg)
}

// StatusError is any other non-2xx answer of a node.
type StatusError struct {
	// Addr is the host:port of the node that answered.
	Addr string
	// Code is the HTTP status.
	Code int
	// Message is the "error" field of the JSON body, or the body itself
	// (truncated), or the status text.
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("client: %s answered %d %s: %s", e.Addr, e.Code, http.StatusText(e.Code), e.Message)
}

// StatusCode returns the HTTP status carried by err (a *StatusError or a
// *NotOwnerError), or 0.
func StatusCode(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	var ne *NotOwnerError
	if errors.As(err, &ne) {
		return wire.StatusNotOwner
	}
	return 0
}
