package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kit/api"
	"clusterkit.dev/services/kit/migrate"
	"clusterkit.dev/services/kv-server-side/internal/store"
)

// Limits of the KV API. A request over a limit is refused with 413.
const (
	// MaxKeySize is the longest key, in bytes.
	MaxKeySize = 1 << 10
	// MaxValueSize is the longest value, in bytes.
	MaxValueSize = 1 << 20
	// maxBody bounds a request body: the longest key and value in a JSON
	// envelope, every byte escaped as \u00XX in the worst case.
	maxBody = 6*(MaxKeySize+MaxValueSize) + 1024
)

// setRequest is the body of POST /kv/set and POST /kv/delete (which reads
// only Key). Pointers tell a missing field from an empty one.
type setRequest struct {
	Key   *string `json:"key"`
	Value *string `json:"value"`
}

// op is one KV operation, from a client or forwarded by another node.
type op struct {
	kind  byte // opKindSet, opKindGet or opKindDelete
	key   string
	value []byte // opKindSet
}

// Kinds of op; they are also the op codes of POST /kv/internal/forward.
const (
	opKindSet    byte = 'S'
	opKindGet    byte = 'G'
	opKindDelete byte = 'D'
)

// name returns the op's metrics label.
func (o *op) name() string {
	switch o.kind {
	case opKindSet:
		return opSet
	case opKindDelete:
		return opDelete
	}
	return opGet
}

// handleSet serves POST /kv/set. It returns the role it served the
// request in and the status it answered (api.Counted).
func (s *Server) handleSet(w http.ResponseWriter, r *http.Request) (role string, status int) {
	return s.handleWrite(w, r, opKindSet)
}

// handleDelete serves POST /kv/delete, as handleSet.
func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) (role string, status int) {
	return s.handleWrite(w, r, opKindDelete)
}

func (s *Server) handleWrite(w http.ResponseWriter, r *http.Request, kind byte) (role string, status int) {
	body, err := api.ReadBody(r, maxBody)
	if err != nil {
		return roleNone, s.writeError(w, err)
	}
	key, value, err := decodeWrite(body, kind == opKindSet)
	if err != nil {
		return roleNone, s.writeError(w, err)
	}
	o := op{kind: kind, key: key}
	if kind == opKindSet {
		o.value = []byte(value)
	}
	role, rep := s.route(r.Context(), o, forwarded(r))
	return role, s.write(w, rep)
}

// handleDeleteKey serves DELETE /kv/key?key=, as handleSet.
func (s *Server) handleDeleteKey(w http.ResponseWriter, r *http.Request) (role string, status int) {
	key, err := api.QueryKey(r, MaxKeySize)
	if err != nil {
		return roleNone, s.writeError(w, err)
	}
	role, rep := s.route(r.Context(), op{kind: opKindDelete, key: key}, forwarded(r))
	return role, s.write(w, rep)
}

// handleGet serves GET /kv/get?key=, and GET /kv/get?key=&local=true, which
// answers from this node's store whatever its role: a debugging aid, and
// what a read from the replicas asks them. It returns what handleSet does.
func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) (role string, status int) {
	key, local, err := api.ReadQuery(r, MaxKeySize)
	if err != nil {
		return roleNone, s.writeError(w, err)
	}
	if local {
		return roleLocal, s.write(w, s.readLocal(key, r.URL.Query().Get("owner") == "true"))
	}
	role, rep := s.route(r.Context(), op{kind: opKindGet, key: key}, forwarded(r))
	return role, s.write(w, rep)
}

// forwarded reports whether another node forwarded r.
func forwarded(r *http.Request) bool { return r.Header.Get(headerForwardedBy) != "" }

// route serves o on the key's primary: here when this node is the primary,
// else by forwarding it. A forwarded op that reaches a node which is not the
// primary is refused with 421 rather than forwarded again, so requests
// never loop while maps disagree.
func (s *Server) route(ctx context.Context, o op, wasForwarded bool) (role string, rep reply) {
	p, err := s.ck.GetPartition(o.key)
	if err != nil {
		return roleNone, errReply(errUnavailable("this node has no partition map yet"))
	}
	if s.ck.IsPrimary(p) {
		return rolePrimary, s.serve(ctx, p, o)
	}
	if wasForwarded {
		return rolePrimary, s.notOwnerReply(p)
	}
	return s.forward(ctx, p, o)
}

// serve runs o as the primary of p. A primary that has not heard from the
// raft leader for PrimaryLease refuses (503): it may have been replaced by
// a primary it has not heard of, and a read it answered could miss writes
// acknowledged by the new one.
func (s *Server) serve(ctx context.Context, p *clusterkit.Partition, o op) reply {
	if since := time.Since(s.ck.LeaderContact()); since > s.cfg.PrimaryLease {
		return errReply(errUnavailable(fmt.Sprintf("this primary of %s has not heard from the raft leader for %v (PrimaryLease %v): it may have been replaced",
			p.ID, since.Round(time.Millisecond), s.cfg.PrimaryLease)))
	}
	switch o.kind {
	case opKindSet:
		return s.writeLocal(ctx, p, o.key, o.value, false)
	case opKindDelete:
		return s.writeLocal(ctx, p, o.key, nil, true)
	}
	return s.readPrimary(ctx, p, o.key)
}

// writeLocal accepts a write (or a delete, as a tombstone) as the primary
// of p: it numbers it, stores it and replicates it according to the ack
// mode. With AckAll it starts the replication, stores this node's copy
// meanwhile, marks the write uncommitted until a majority holds it, and
// waits for the owners' acknowledgements, or ctx (see replication.wait).
func (s *Server) writeLocal(ctx context.Context, p *clusterkit.Partition, key string, value []byte, deleted bool) reply {
	rec := store.Record{Key: key, Value: value, Deleted: deleted,
		Version: store.Version{Epoch: p.Epoch, Seq: s.clock.now()}}
	if err := s.replicateWrite(ctx, p, rec); err != nil {
		return errReply(err)
	}
	return jsonReply(http.StatusOK, writeAnswer{Key: key, Version: rec.Version})
}

// replicateWrite stores rec as the primary of p and has it replicated as
// the ack mode asks.
func (s *Server) replicateWrite(ctx context.Context, p *clusterkit.Partition, rec store.Record) error {
	if s.cfg.Ack == AckPrimary {
		if err := s.storeOwn(p, rec); err != nil {
			return err
		}
		s.repl.replicateAsync(p, rec)
		return nil
	}
	w, err := s.repl.start(p, rec)
	if err != nil {
		return err
	}
	s.unc.begin(p.Index, rec.Key, rec.Version)
	if err := s.storeOwn(p, rec); err != nil {
		return err
	}
	if err := w.wait(ctx); err != nil {
		return err
	}
	s.unc.commit(p.Index, rec.Key, rec.Version)
	return nil
}

// storeOwn stores a write this node accepted as primary. The store refuses
// it only when the key holds a newer version: a write of a newer epoch means
// a newer primary exists; a newer write of this epoch superseded it, which is
// fine.
func (s *Server) storeOwn(p *clusterkit.Partition, rec store.Record) error {
	held, err := s.store.Write(p.Index, rec)
	if err != nil {
		return fmt.Errorf("store write: %w", err)
	}
	if held.Epoch > rec.Version.Epoch {
		return errUnavailable(fmt.Sprintf("partition %d has a newer primary than this node knows; retry", p.Index))
	}
	return nil
}

// readPrimary answers a read as the primary of p, once this node holds the
// partition's data (it may still be copying it after a move).
func (s *Server) readPrimary(ctx context.Context, p *clusterkit.Partition, key string) reply {
	if !s.parts.Wait(ctx, p.Index, s.cfg.ReadyTimeout, servable) {
		return errReply(errUnavailable(fmt.Sprintf("partition %d is still being copied to this node; retry", p.Index)))
	}
	rec, found, err := s.store.Get(p.Index, key)
	if err != nil {
		return errReply(fmt.Errorf("store read: %w", err))
	}
	if found && s.cfg.Ack == AckAll && s.unc.pending(p.Index, key, rec.Version) {
		// The newest write of key may not be on a majority of owners yet
		// (in flight, or it failed): have it stored there before anyone
		// sees it, or it could vanish with this node.
		w, err := s.repl.start(p, rec)
		if err == nil {
			err = w.wait(ctx)
		}
		if err != nil {
			return errReply(errUnavailable(fmt.Sprintf("the newest write of %q is not yet on a majority of the owners of partition %d; retry: %v",
				key, p.Index, err)))
		}
		s.unc.commit(p.Index, key, rec.Version)
	}
	if !found || rec.Deleted {
		return jsonReply(http.StatusNotFound, errorBody{Error: "key not found"})
	}
	return jsonReply(http.StatusOK, getAnswer{Key: key, Value: string(rec.Value), Version: rec.Version})
}

// readLocal answers from this node's store. A deleted key is a 404 that
// carries the tombstone's version. An owner that is still copying the
// partition answers 503: its store may miss keys.
//
// With asOwner (a fallback read of another node's) it answers only as a
// ready primary or replica of the key's partition in a map it knows is
// current: a node that lost the partition, or that was cut off, could hold
// an old copy.
func (s *Server) readLocal(key string, asOwner bool) reply {
	p, err := s.ck.GetPartition(key)
	if err != nil {
		return errReply(errUnavailable("this node has no partition map yet"))
	}
	if asOwner {
		if err := s.checkOwnerRead(p); err != nil {
			return errReply(err)
		}
	}
	if migrate.Owner(p, s.self) && !s.parts.Get(p.Index).Owned() {
		return errReply(errUnavailable(fmt.Sprintf("partition %d is still being copied to this node", p.Index)))
	}
	rec, found, err := s.store.Get(p.Index, key)
	if err != nil {
		return errReply(fmt.Errorf("store read: %w", err))
	}
	switch {
	case !found:
		return jsonReply(http.StatusNotFound, errorBody{Error: "key not found"})
	case rec.Deleted:
		return jsonReply(http.StatusNotFound, errorBody{Error: "key not found", Version: &rec.Version})
	}
	return jsonReply(http.StatusOK, getAnswer{Key: key, Value: string(rec.Value), Version: rec.Version})
}

// checkOwnerRead refuses a fallback read of p's local copy unless this node
// is a ready primary or replica of p and its map is current (it heard from
// the raft leader within PrimaryLease).
func (s *Server) checkOwnerRead(p *clusterkit.Partition) error {
	if since := time.Since(s.ck.LeaderContact()); since > s.cfg.PrimaryLease {
		return errUnavailable(fmt.Sprintf("this node has not heard from the raft leader for %v: its map may be old",
			since.Round(time.Millisecond)))
	}
	if (p.PrimaryNode != s.self && !slices.Contains(p.ReplicaNodes, s.self)) || !s.parts.Get(p.Index).Owned() {
		return errUnavailable(fmt.Sprintf("this node is not a ready owner of partition %d in map version %d", p.Index, p.Version))
	}
	return nil
}

// decodeWrite decodes and checks the JSON body of a set (withValue) or a
// delete.
func decodeWrite(body []byte, withValue bool) (key, value string, err error) {
	var req setRequest
	if err := json.Unmarshal(body, &req); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return "", "", errBadRequest(fmt.Sprintf("%s must be a string", te.Field))
		}
		return "", "", errBadRequest("malformed JSON body: " + err.Error())
	}
	if req.Key == nil {
		return "", "", errBadRequest(`"key" is required`)
	}
	if err := api.CheckKey(*req.Key, MaxKeySize); err != nil {
		return "", "", err
	}
	if !withValue {
		return *req.Key, "", nil
	}
	if req.Value == nil {
		return "", "", errBadRequest(`"value" is required`)
	}
	if len(*req.Value) > MaxValueSize {
		return "", "", errTooLarge(fmt.Sprintf("value is %d bytes; the limit is %d", len(*req.Value), MaxValueSize))
	}
	return *req.Key, *req.Value, nil
}
