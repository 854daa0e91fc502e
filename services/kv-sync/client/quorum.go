package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	ckclient "clusterkit.dev/clusterkit/client"
)

// record is one owner's answer about a key. found is false when the owner
// has no record of it; a deleted key is found, with deleted set.
type record struct {
	value   string
	version Version
	deleted bool
	found   bool
}

// newest returns the answer with the greatest version.
func newest(answers []record) record {
	var best record
	for _, a := range answers {
		if a.found && (!best.found || best.version.Less(a.version)) {
			best = a
		}
	}
	return best
}

// agree reports whether every answer holds version v.
func agree(answers []record, v Version) bool {
	for _, a := range answers {
		if !a.found || a.version != v {
			return false
		}
	}
	return true
}

// majority is the number of ready owners a quorum needs.
func majority(r ckclient.Route) int { return len(r.ReadOwners())/2 + 1 }

// readQuorum asks every ready owner of r for its record of key and
// returns the answers of the first majority, without waiting for the
// others: a slow or hung owner costs nothing while a majority answers. It
// fails as soon as a majority can no longer answer, with an error wrapping
// ErrNoQuorum and the owners' errors (a *ckclient.NotOwnerError among
// them lets WithRetry refresh the map).
func (c *Client) readQuorum(ctx context.Context, r ckclient.Route, key string) ([]record, error) {
	owners := r.ReadOwners()
	need := majority(r)
	results := make(chan callResult, len(owners))
	for i, n := range owners {
		c.askRead(r, n, key, i, results)
	}
	answers := make([]record, 0, len(owners))
	var errs []error
	for len(answers) < need && len(errs) <= len(owners)-need {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", noQuorum(r, len(answers), need, errs), ctx.Err())
		case res := <-results:
			if res.err != nil {
				errs = append(errs, res.err)
				continue
			}
			answers = append(answers, readRecord(res.res))
		}
	}
	if len(answers) < need {
		return nil, noQuorum(r, len(answers), need, errs)
	}
	return answers, nil
}

// writeQuorum sends rec to every owner of r, joining owners included, and
// returns once a majority of the ready owners stored it. The writes to the
// other owners go on after it returns, bounded by the client's timeout.
//
// If an owner answers with a newer map than r's, the partition may have
// gained an owner that r does not list: a joining owner copies the
// partition and must see every write made meanwhile. Before it returns,
// writeQuorum then refreshes the map and sends rec to the owners it adds.
func (c *Client) writeQuorum(ctx context.Context, r ckclient.Route, key string, rec record) error {
	owners := r.WriteOwners()
	ready := len(r.ReadOwners()) // WriteOwners lists the ready owners first
	need := majority(r)
	results := make(chan callResult, len(owners))
	ids := make([]string, len(owners))
	for i, n := range owners {
		ids[i] = n.ID
	}
	track := c.lag.track(ids, time.Now())
	for i, n := range owners {
		c.askWrite(r, n, key, rec, i, results, track)
	}
	stored, waiting := 0, ready
	var newest uint64
	var newestAddr string
	var errs []error
	for stored+waiting >= need {
		select {
		case <-ctx.Done():
			track.returned(false)
			return fmt.Errorf("%w: %w", noQuorum(r, stored, need, errs), ctx.Err())
		case res := <-results:
			if res.nodeVersion > newest {
				newest, newestAddr = res.nodeVersion, owners[res.tag].IP
			}
			if res.tag < ready {
				waiting--
			}
			switch {
			case res.err != nil:
				errs = append(errs, res.err)
			case res.tag < ready:
				stored++
			}
		}
		if stored >= need {
			track.returned(true)
			if newest > r.MapVersion {
				c.reachNewOwners(ctx, r, key, rec, newestAddr, newest)
			}
			return nil
		}
	}
	track.returned(false)
	return noQuorum(r, stored, need, errs)
}

// reachNewOwners brings the map to at least version v, which the node at
// addr answered with, and sends rec to the owners of key that the new map
// lists and r did not, waiting for their answers. It is best effort: a
// write already acknowledged by a majority stays acknowledged; an owner it
// misses catches up from the others before it counts in quorums. It takes
// at most about a call timeout, or the retry wait of the SDK
// (ckclient.WithRetryWait) when the map has to be waited for.
func (c *Client) reachNewOwners(ctx context.Context, r ckclient.Route, key string, rec record, addr string, v uint64) {
	nr, ok := c.routeAtLeast(ctx, key, addr, v)
	if !ok || nr.MapVersion <= r.MapVersion {
		return
	}
	known := map[string]bool{}
	for _, n := range r.WriteOwners() {
		known[n.ID] = true
	}
	results := make(chan callResult, len(nr.WriteOwners()))
	sent := 0
	for _, n := range nr.WriteOwners() {
		if !known[n.ID] {
			c.askWrite(nr, n, key, rec, sent, results, nil)
			sent++
		}
	}
	for range sent {
		select {
		case <-ctx.Done():
			return
		case <-results:
		}
	}
}

// routeAtLeast returns the route of key in a map of version v or newer,
// fetching the map first from the node at addr, which answered with
// version v, rather than from the node the SDK last used, which may be the
// one that stopped answering. It reports false when no such map came.
func (c *Client) routeAtLeast(ctx context.Context, key, addr string, v uint64) (ckclient.Route, bool) {
	var nr ckclient.Route
	asked := false
	// WithRetry refreshes the map from the node named by a NotOwnerError,
	// and calls fn again with the new route.
	err := c.sdk.WithRetry(ctx, key, func(r ckclient.Route) error {
		if r.MapVersion >= v || asked {
			nr = r
			return nil
		}
		asked = true
		return &ckclient.NotOwnerError{Addr: addr, MapVersion: v}
	})
	return nr, err == nil && nr.MapVersion >= v
}

func noQuorum(r ckclient.Route, got, need int, errs []error) error {
	err := fmt.Errorf("%w: %d of the %d ready owners of partition %d answered, %d needed",
		ErrNoQuorum, got, len(r.ReadOwners()), r.Partition, need)
	if len(errs) == 0 {
		return err
	}
	return fmt.Errorf("%w: %w", err, errors.Join(errs...))
}
