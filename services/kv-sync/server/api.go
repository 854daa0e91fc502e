package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"clusterkit.dev/services/kit/api"
	"clusterkit.dev/services/kit/migrate"
	"clusterkit.dev/services/kit/stream"
	"clusterkit.dev/services/kv-sync/client"
	"clusterkit.dev/services/kv-sync/internal/store"
)

// Limits of the KV API. A request over a limit is refused with 413.
const (
	// MaxKeySize is the longest key, in bytes.
	MaxKeySize = client.MaxKeySize
	// MaxValueSize is the longest value, in bytes.
	MaxValueSize = client.MaxValueSize
	// maxBody bounds a request body: the longest key and value in a JSON
	// envelope, every byte escaped as \u00XX in the worst case.
	maxBody = 6*(MaxKeySize+MaxValueSize) + 1024
)

// streamLimits bound the records of a partition stream as the API bounds
// writes.
var streamLimits = stream.Limits{MaxKey: MaxKeySize, MaxValue: MaxValueSize}

// writeRequest is the body of POST /kv/set and POST /kv/delete (which
// ignores Value). Pointers tell a missing field from an empty one.
type writeRequest struct {
	Key     *string        `json:"key"`
	Value   *string        `json:"value"`
	Version *store.Version `json:"version"`
}

// handleSet serves POST /kv/set: a replica write when the body carries a
// version, a quorum write run by this node otherwise. It returns the role
// it served the request in and the status it answered (api.Counted).
func (s *Server) handleSet(w http.ResponseWriter, r *http.Request) (role string, status int) {
	return s.handleWrite(w, r, opSet)
}

// handleDelete serves POST /kv/delete, as handleSet.
func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) (role string, status int) {
	return s.handleWrite(w, r, opDelete)
}

func (s *Server) handleWrite(w http.ResponseWriter, r *http.Request, op string) (role string, status int) {
	body, err := api.ReadBody(r, maxBody)
	if err != nil {
		return roleNone, s.writeError(w, err)
	}
	req, err := decodeWrite(body, op == opSet)
	if err != nil {
		return roleNone, s.writeError(w, err)
	}
	value := ""
	if req.Value != nil {
		value = *req.Value
	}
	if req.Version != nil {
		if !s.authorized(w, r) {
			return roleReplica, http.StatusUnauthorized
		}
		return roleReplica, s.replicaWrite(w, r, store.Record{Key: *req.Key, Value: []byte(value), Version: *req.Version, Deleted: op == opDelete})
	}
	return roleCoordinator, s.coordinate(w, r, *req.Key, func(ctx context.Context, c *client.Client) (any, error) {
		var v client.Version
		var err error
		if op == opDelete {
			v, err = c.Delete(ctx, *req.Key)
		} else {
			v, err = c.Set(ctx, *req.Key, value)
		}
		return writeAnswer{Key: *req.Key, Version: store.Version(v)}, err
	})
}

// handleDeleteKey serves DELETE /kv/key?key=: a quorum delete run by this
// node.
func (s *Server) handleDeleteKey(w http.ResponseWriter, r *http.Request) (role string, status int) {
	key, err := api.QueryKey(r, MaxKeySize)
	if err != nil {
		return roleNone, s.writeError(w, err)
	}
	return roleCoordinator, s.coordinate(w, r, key, func(ctx context.Context, c *client.Client) (any, error) {
		v, err := c.Delete(ctx, key)
		return writeAnswer{Key: key, Version: store.Version(v)}, err
	})
}

// handleGet serves GET /kv/get?key=: a quorum read run by this node, or with
// local=true this node's own record, the replica read of a client's quorum.
func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) (role string, status int) {
	key, local, err := api.ReadQuery(r, MaxKeySize)
	if err != nil {
		return roleNone, s.writeError(w, err)
	}
	if local {
		return roleReplica, s.replicaRead(w, r, key)
	}
	return roleCoordinator, s.coordinate(w, r, key, func(ctx context.Context, c *client.Client) (any, error) {
		value, v, err := c.Get(ctx, key)
		return getAnswer{Key: key, Value: value, Version: store.Version(v)}, err
	})
}

// replicaWrite stores a versioned write of a client's quorum, unless the
// key holds a newer version, and answers the version the key holds. The
// node must own the key's partition in its map (in any role: joining owners
// receive writes too).
func (s *Server) replicaWrite(w http.ResponseWriter, r *http.Request, rec store.Record) int {
	if rec.Version.IsZero() {
		return s.writeError(w, errBadRequest("version must not be zero"))
	}
	api.AwaitMap(s.ck, r, replicaMapWait)
	p, err := s.ck.GetPartition(rec.Key)
	if err != nil {
		return s.writeError(w, errUnavailable("this node has no partition map yet"))
	}
	if !migrate.Owner(p, s.self) {
		return s.writeNotOwner(w, p, "an owner")
	}

	if rec.Deleted {
		rec.Value = nil
	}
	held, err := s.store.Write(p.Index, rec)
	if err != nil {
		return s.writeError(w, fmt.Errorf("store write: %w", err))
	}
	if held != rec.Version {
		s.m.staleWrites.Inc()
	}
	return s.writeJSON(w, http.StatusOK, writeAnswer{Key: rec.Key, Version: held})
}

// replicaRead answers this node's record of key: 200 with its value and
// version, or 404, with the version when the key was deleted. The node must
// be a ready owner (primary or replica) holding the partition's data.
func (s *Server) replicaRead(w http.ResponseWriter, r *http.Request, key string) int {
	api.AwaitMap(s.ck, r, replicaMapWait)
	p, err := s.ck.GetPartition(key)
	if err != nil {
		return s.writeError(w, errUnavailable("this node has no partition map yet"))
	}
	if !migrate.ReadOwner(p, s.self) {
		return s.writeNotOwner(w, p, "a ready owner")
	}
	if !s.parts.Get(p.Index).Owned() {
		return s.writeError(w, errUnavailable(fmt.Sprintf("partition %d is still being copied to this node", p.Index)))
	}
	rec, found, err := s.store.Get(p.Index, key)
	if err != nil {
		return s.writeError(w, fmt.Errorf("store read: %w", err))
	}
	switch {
	case !found:
		return s.writeJSON(w, http.StatusNotFound, errorBody{Error: "key not found"})
	case rec.Deleted:
		return s.writeJSON(w, http.StatusNotFound, errorBody{Error: "key not found", Version: &rec.Version})
	}
	return s.writeJSON(w, http.StatusOK, getAnswer{Key: key, Value: string(rec.Value), Version: rec.Version})
}

// How long a request routed with a newer map than the node's waits for
// it. A replica request waits briefly, well within the client's call
// timeout: a map change reaches a live node within milliseconds, and an
// owner that misses a write for want of the map catches up from the others
// before it counts in quorums. A stream waits longer: the copier relies on
// it (see streamHandler).
const (
	replicaMapWait = 250 * time.Millisecond
	streamMapWait  = time.Second
)

// decodeWrite decodes and checks the JSON body of a set (withValue) or a
// delete.
func decodeWrite(body []byte, withValue bool) (writeRequest, error) {
	var req writeRequest
	if err := json.Unmarshal(body, &req); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return req, errBadRequest(fmt.Sprintf("%s has the wrong type: want %s", te.Field, te.Type))
		}
		return req, errBadRequest("malformed JSON body: " + err.Error())
	}
	if req.Key == nil {
		return req, errBadRequest(`"key" is required`)
	}
	if err := api.CheckKey(*req.Key, MaxKeySize); err != nil {
		return req, err
	}
	if req.Version != nil && req.Version.Counter == math.MaxUint64 {
		return req, errBadRequest("version counter 18446744073709551615 cannot be exceeded: refused")
	}
	if !withValue {
		return req, nil
	}
	if req.Value == nil {
		return req, errBadRequest(`"value" is required`)
	}
	if len(*req.Value) > MaxValueSize {
		return req, errTooLarge(fmt.Sprintf("value is %d bytes; the limit is %d", len(*req.Value), MaxValueSize))
	}
	return req, nil
}
