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

// readQuorum asks a majority of r's ready owners for their record of key,
// primary first; when one fails it asks the next. It returns the answers of
// a majority, or an error wrapping ErrNoQuorum and the owners' errors (a
// *ckclient.NotOwnerError among them lets WithRetry refresh the map).
func (c *Client) readQuorum(ctx context.Context, r ckclient.Route, key string) ([]record, error) {
	owners := r.ReadOwners()
	need := majority(r)
	results := make(chan callResult, len(owners))
	next, running := 0, 0
	ask := func() {
		c.askRead(r, owners[next], key, next, results)
		next++
		running++
	}
	for next < len(owners) && next < need {
		ask()
	}
	var answers []record
	var errs []error
	for running > 0 && len(answers) < need {
		var res callResult
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", noQuorum(r, len(answers), need, errs), ctx.Err())
		case res = <-results:
		}
		running--
		if res.err != nil {
			errs = append(errs, res.err)
			if next < len(owners) {
				ask()
			}
			continue
		}
		answers = append(answers, readRecord(res.res))
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
	stored := 0
	var newest uint64
	var errs []error
	for range owners {
		select {
		case <-ctx.Done():
			track.returned(false)
			return fmt.Errorf("%w: %w", noQuorum(r, stored, need, errs), ctx.Err())
		case res := <-results:
			newest = max(newest, res.nodeVersion)
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
				c.reachNewOwners(ctx, r, key, rec, newest)
			}
			return nil
		}
	}
	track.returned(false)
	return noQuorum(r, stored, need, errs)
}

// reachNewOwners brings the map to at least version v and sends rec to the
// owners of key that the new map lists and r did not, waiting for their
// answers. It is best effort: a write already acknowledged by a majority
// stays acknowledged; an owner it misses catches up from the others before
// it counts in quorums.
func (c *Client) reachNewOwners(ctx context.Context, r ckclient.Route, key string, rec record, v uint64) {
	if c.sdk.Version() < v {
		_ = c.sdk.Refresh(ctx)
	}
	nr, err := c.sdk.Route(key)
	if (err != nil && !errors.Is(err, ckclient.ErrNoPrimary)) || nr.MapVersion <= r.MapVersion {
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

func noQuorum(r ckclient.Route, got, need int, errs []error) error {
	err := fmt.Errorf("%w: %d of the %d ready owners of partition %d answered, %d needed",
		ErrNoQuorum, got, len(r.ReadOwners()), r.Partition, need)
	if len(errs) == 0 {
		return err
	}
	return fmt.Errorf("%w: %w", err, errors.Join(errs...))
}
