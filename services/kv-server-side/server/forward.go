package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kv-server-side/internal/store"
)

// headerForwardedBy marks a request forwarded by another node (its value is
// that node's ID). A node that receives one for a key it is not the primary
// of answers 421 instead of forwarding it again. Forwarded ops travel in
// batches (POST /kv/internal/forward), which count as forwarded too.
const headerForwardedBy = "X-Kv-Forwarded-By"

// forwardAttempts bounds the tries of a forwarded request that nodes with
// disagreeing maps keep refusing (421).
const forwardAttempts = 3

// forward sends o to p's primary and returns its reply. When the primary
// answers 421 (its map disagrees with this node's), forward waits for the
// newer map and tries again, up to forwardAttempts times, serving o here if
// this node has become the primary. When the primary does not answer, a read is answered by the
// replicas (fallbackRead); a write fails with 503.
func (s *Server) forward(ctx context.Context, p *clusterkit.Partition, o op) (role string, rep reply) {
	fctx, cancel := context.WithTimeout(ctx, s.cfg.ForwardTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		primary := s.ck.GetPrimary(p)
		if primary == nil {
			return roleForward, errReply(errUnavailable(fmt.Sprintf("partition %d has no primary", p.Index)))
		}
		if primary.ID == s.self {
			return rolePrimary, s.serve(fctx, p, o)
		}
		rep, err := s.fwd.send(fctx, primary, o)
		if err != nil {
			if o.kind == opKindGet {
				return roleFallback, s.fallbackRead(ctx, p, o.key, primary.ID, err)
			}
			return roleForward, errReply(errUnavailable(unanswered(primary.ID, p.Index, err)))
		}
		if rep.Status != clusterkit.StatusNotOwner {
			return roleForward, rep
		}
		if attempt == forwardAttempts-1 {
			return roleForward, errReply(errUnavailable(fmt.Sprintf("partition %d is changing primary; retry", p.Index)))
		}
		var nb clusterkit.NotOwnerBody
		_ = json.Unmarshal(rep.Body, &nb)
		s.awaitMap(fctx, nb.MapVersion, attempt)
		if p, err = s.ck.GetPartition(o.key); err != nil {
			return roleForward, errReply(errUnavailable("this node has no partition map"))
		}
	}
}

// unanswered explains a forwarded write whose primary did not answer: when
// the connection was refused the write was not applied; otherwise it may
// have been.
func unanswered(primary string, partition int, err error) string {
	var op *net.OpError
	if errors.Is(err, errNotSent) || errors.As(err, &op) && op.Op == "dial" {
		return fmt.Sprintf("primary %s of partition %d is unreachable (the write was not applied): %v", primary, partition, err)
	}
	return fmt.Sprintf("primary %s of partition %d did not answer (the write may or may not have been applied): %v", primary, partition, err)
}

// awaitMap waits briefly for the map to reach version v, the version of a
// node that refused a forwarded request. When this node's map is already as
// new, the other node is the one behind: give it a moment to catch up,
// longer after each refusal.
func (s *Server) awaitMap(ctx context.Context, v uint64, attempt int) {
	if v > s.ck.Version() {
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_ = s.ck.WaitForMap(wctx, v)
		return
	}
	t := time.NewTimer(50 * time.Millisecond << attempt)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// fallbackRead answers a read whose primary did not answer by asking the
// partition's replicas for their local copies and returning the newest.
//
// With AckAll a write is acknowledged once a majority of the n ready owners
// stored it, so at least floor(n/2) replicas hold it; answers from
// ceil(n/2) of the n-1 replicas therefore always include one of them. With
// fewer answers the read fails rather than risk an old value. With
// AckPrimary the fallback returns the newest value the replicas have
// received, which may be older than the last acknowledged write.
//
// The node that asks must know its map is current (it heard from the raft
// leader within PrimaryLease), and each replica answers only as a ready
// owner in a current map of its own: a node cut off from the cluster would
// otherwise ask the owners of an old map, and find an old value.
func (s *Server) fallbackRead(ctx context.Context, p *clusterkit.Partition, key, primary string, cause error) reply {
	if since := time.Since(s.ck.LeaderContact()); since > s.cfg.PrimaryLease {
		return errReply(errUnavailable(fmt.Sprintf(
			"primary %s of partition %d did not answer (%v), and this node has not heard from the raft leader for %v: its map may be old",
			primary, p.Index, cause, since.Round(time.Millisecond))))
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ForwardTimeout)
	defer cancel()
	replicas := p.ReplicaNodes
	need := (len(replicas) + 2) / 2 // ceil(n/2) with n = len(replicas)+1 ready owners
	type answer struct {
		rec   store.Record
		found bool
		err   error
	}
	answers := make(chan answer, len(replicas))
	for _, id := range replicas {
		go func() {
			rec, found, err := s.readOwner(ctx, id, p, key)
			answers <- answer{rec, found, err}
		}()
	}
	var best store.Record
	var bestFound bool
	var errs []string
	got := 0
	// The first need answers suffice: a replica that does not answer
	// (paused, cut off) holds up nothing.
	for range replicas {
		if got >= need {
			break
		}
		a := <-answers
		if a.err != nil {
			errs = append(errs, a.err.Error())
			continue
		}
		got++
		if a.found && (!bestFound || best.Version.Less(a.rec.Version)) {
			best, bestFound = a.rec, true
		}
	}
	if got < need {
		return errReply(errUnavailable(fmt.Sprintf(
			"primary %s of partition %d did not answer (%v) and %d of its %d replicas did; %d needed: %s",
			primary, p.Index, cause, got, len(replicas), need, strings.Join(errs, "; "))))
	}
	if !bestFound || best.Deleted {
		return jsonReply(http.StatusNotFound, errorBody{Error: "key not found"})
	}
	return jsonReply(http.StatusOK, getAnswer{Key: key, Value: string(best.Value), Version: best.Version})
}

// readOwner returns id's local record of key: found is false when id has
// no record; a tombstone is a found, deleted record.
func (s *Server) readOwner(ctx context.Context, id string, p *clusterkit.Partition, key string) (store.Record, bool, error) {
	if id == s.self {
		if err := s.checkOwnerRead(p); err != nil {
			return store.Record{}, false, err
		}
		return s.store.Get(p.Index, key)
	}
	node := s.ck.Node(id)
	if node == nil {
		return store.Record{}, false, fmt.Errorf("unknown node %s", id)
	}
	resp, err := s.send(ctx, node, http.MethodGet, "/kv/get?local=true&owner=true&key="+url.QueryEscape(key), nil)
	if err != nil {
		return store.Record{}, false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		var a getAnswer
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
			return store.Record{}, false, fmt.Errorf("decode answer of %s: %w", id, err)
		}
		return store.Record{Key: key, Value: []byte(a.Value), Version: a.Version}, true, nil
	case http.StatusNotFound:
		var e errorBody
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
			return store.Record{}, false, fmt.Errorf("decode answer of %s: %w", id, err)
		}
		if e.Version == nil {
			return store.Record{}, false, nil
		}
		return store.Record{Key: key, Version: *e.Version, Deleted: true}, true, nil
	}
	var e errorBody
	_ = json.NewDecoder(io.LimitReader(resp.Body, 4<<10)).Decode(&e)
	return store.Record{}, false, fmt.Errorf("%s answered %s: %s", id, resp.Status, e.Error)
}
