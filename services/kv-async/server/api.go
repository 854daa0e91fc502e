package server

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kv-async/internal/store"
)

// The KV API:
//
//	POST /kv/set     {"key": k, "value": v}  -> 200 {"key", "partition", "version"}
//	GET  /kv/get?key=k[&consistency=any]     -> 200 {"key", "value", "partition", "version"} | 404
//	POST /kv/delete  {"key": k}              -> 200 {"key", "partition", "deleted", "version"}
//
// Writes are accepted by the key's primary only; reads by the primary, or
// with consistency=any by any ready owner (a replica may lag behind the
// primary). Any other node answers clusterkit.StatusNotOwner. Every answer
// carries the node's map version in clusterkit.HeaderMapVersion.

// maxWriteBody caps the body of a write: a 1 KiB key and a 1 MiB value,
// each JSON-escaped (at most 6 bytes per byte), and the braces.
const maxWriteBody = 6*(MaxKeyBytes+MaxValueBytes) + 64

// readyWait bounds how long a read waits for a partition this node is
// copying or catching up.
const readyWait = 5 * time.Second

// Consistency levels of GET /kv/get.
const (
	consistencyPrimary = "primary"
	consistencyAny     = "any"
)

type setRequest struct {
	Key   *string `json:"key"`
	Value *string `json:"value"`
}

type deleteRequest struct {
	Key *string `json:"key"`
}

// WriteResponse is the answer to a set.
type WriteResponse struct {
	Key       string `json:"key"`
	Partition int    `json:"partition"`
	Version   string `json:"version"`
}

// DeleteResponse is the answer to a delete. Deleted is false when the key
// had no value (nothing was written).
type DeleteResponse struct {
	Key       string `json:"key"`
	Partition int    `json:"partition"`
	Deleted   bool   `json:"deleted"`
	Version   string `json:"version,omitempty"`
}

// GetResponse is the answer to a get.
type GetResponse struct {
	Key       string `json:"key"`
	Value     string `json:"value"`
	Partition int    `json:"partition"`
	Version   string `json:"version"`
}

func (s *Server) handleSet(w http.ResponseWriter, r *http.Request, role *clusterkit.Role) error {
	key, value, err := decodeSet(w, r)
	if err != nil {
		return err
	}
	if err := checkKey(key); err != nil {
		return err
	}
	if len(value) > MaxValueBytes {
		return errorf(http.StatusRequestEntityTooLarge, "value is %d bytes, the limit is %d", len(value), MaxValueBytes)
	}
	rec, _, p, err := s.write(r, role, key, value, false)
	if err != nil {
		return err
	}
	resp := WriteResponse{Key: rec.Key, Partition: p, Version: string(rec.Version.Append(make([]byte, 0, 24)))}
	writeBody(w, http.StatusOK, resp.appendJSON(make([]byte, 0, 64+len(key))))
	return nil
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request, role *clusterkit.Role) error {
	key, err := decodeDelete(w, r)
	if err != nil {
		return err
	}
	if err := checkKey(key); err != nil {
		return err
	}
	rec, existed, p, err := s.write(r, role, key, nil, true)
	if err != nil {
		return err
	}
	resp := DeleteResponse{Key: key, Partition: p, Deleted: existed}
	if existed {
		resp.Version = rec.Version.String()
	}
	writeBody(w, http.StatusOK, resp.appendJSON(nil))
	return nil
}

// write stores a set or delete on this node, which must be the key's
// primary, and queues it for the replicas.
func (s *Server) write(r *http.Request, role *clusterkit.Role, key string, value []byte, deleted bool) (store.Record, bool, int, error) {
	p, err := s.ck.GetPartition(key)
	if err != nil {
		return store.Record{}, false, 0, err
	}
	if *role = s.role(p); *role != clusterkit.RolePrimary {
		s.awaitMap(r.Context(), requestMapVersion(r))
		if p = s.partition(p.Index); s.role(p) != clusterkit.RolePrimary {
			*role = s.role(p)
			return store.Record{}, false, p.Index, s.notOwner(p, "this node is not the primary of "+p.ID)
		}
		*role = clusterkit.RolePrimary
	}
	idx := p.Index
	rec, existed, err := s.store.Write(idx, key, value, deleted, func() (uint64, error) { return s.primaryEpoch(idx) })
	if err != nil {
		return store.Record{}, false, idx, err
	}
	if existed || !deleted {
		s.repl.notify()
	}
	return rec, existed, idx, nil
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request, role *clusterkit.Role) error {
	q := r.URL.Query()
	if !q.Has("key") {
		return errorf(http.StatusBadRequest, "key is required")
	}
	key := q.Get("key")
	if err := checkKey(key); err != nil {
		return err
	}
	consistency := q.Get("consistency")
	switch consistency {
	case "", consistencyPrimary, consistencyAny:
	default:
		return errorf(http.StatusBadRequest, "consistency %q: use %q (default) or %q", consistency, consistencyPrimary, consistencyAny)
	}
	p, err := s.ck.GetPartition(key)
	if err != nil {
		return err
	}
	allowed := func(role clusterkit.Role) bool {
		return role == clusterkit.RolePrimary || (consistency == consistencyAny && role == clusterkit.RoleReplica)
	}
	if *role = s.role(p); !allowed(*role) {
		s.awaitMap(r.Context(), requestMapVersion(r))
		p = s.partition(p.Index)
		if *role = s.role(p); !allowed(*role) {
			why := "this node is not the primary of " + p.ID
			if consistency == consistencyAny {
				why = "this node is not a ready owner of " + p.ID
			}
			return s.notOwner(p, why)
		}
	}
	if err := s.awaitReady(r.Context(), p.Index); err != nil {
		return err
	}
	rec, found, err := s.store.Get(p.Index, key)
	if err != nil {
		return err
	}
	if !found || rec.Deleted {
		return errorf(http.StatusNotFound, "key %q not found", key)
	}
	resp := GetResponse{Key: key, Value: string(rec.Value), Partition: p.Index, Version: rec.Version.String()}
	writeBody(w, http.StatusOK, resp.appendJSON(make([]byte, 0, 80+len(key)+len(rec.Value))))
	return nil
}

// awaitReady waits until partition p is no longer being copied or caught
// up on this node, at most readyWait.
func (s *Server) awaitReady(ctx context.Context, p int) error {
	ch := s.ready(p)
	if ch == nil {
		return nil
	}
	t := time.NewTimer(readyWait)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-t.C:
		return errorf(http.StatusServiceUnavailable, "partition %d is still being copied to this node", p)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkKey validates a key.
func checkKey(key string) error {
	switch {
	case key == "":
		return errorf(http.StatusBadRequest, "key must not be empty")
	case len(key) > MaxKeyBytes:
		return errorf(http.StatusRequestEntityTooLarge, "key is %d bytes, the limit is %d", len(key), MaxKeyBytes)
	}
	return nil
}

// bodyHint is the most readBody allocates up front on the word of a
// request's Content-Length: a larger body grows the buffer as it arrives,
// so a client that announces more than it sends costs it nothing.
const bodyHint = 64 << 10

// readBody reads a request body of at most limit bytes (413 beyond).
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, errorf(http.StatusRequestEntityTooLarge, "body is %d bytes, the limit is %d", r.ContentLength, limit)
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	var buf bytes.Buffer
	// One byte more than announced lets ReadFrom see the end without
	// growing the buffer.
	buf.Grow(int(min(max(r.ContentLength, 0), bodyHint)) + 1)
	_, err := buf.ReadFrom(body)
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
		return buf.Bytes(), nil
	case errors.As(err, &mbe):
		return nil, errorf(http.StatusRequestEntityTooLarge, "body exceeds %d bytes", limit)
	}
	return nil, errorf(http.StatusBadRequest, "read body: %v", err)
}
