package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"clusterkit.dev/clusterkit/wire"
)

// Check turns a node's answer into an error: nil for a 2xx answer, whose
// body is left to the caller (read it to the end before closing it, or the
// connection cannot be reused); *NotOwnerError for
// wire.StatusNotOwner; *StatusError for any other status. For an
// error it reads and closes the body.
func Check(resp *http.Response) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	defer drainClose(resp.Body)
	addr := ""
	if resp.Request != nil && resp.Request.URL != nil {
		addr = resp.Request.URL.Host
	}
	if resp.StatusCode != wire.StatusNotOwner {
		return statusError(addr, resp)
	}
	e := &NotOwnerError{Addr: addr, MapVersion: MapVersion(resp)}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if json.Unmarshal(b, &e.Body) == nil && e.Body.MapVersion > e.MapVersion {
		e.MapVersion = e.Body.MapVersion
	}
	return e
}

// MapVersion returns the map version a node stated in its answer
// (wire.HeaderMapVersion), or 0.
func MapVersion(resp *http.Response) uint64 {
	v, _ := strconv.ParseUint(resp.Header.Get(wire.HeaderMapVersion), 10, 64)
	return v
}

// SetMapVersion stamps req with the version of the map it was routed
// with (wire.HeaderMapVersion), so that a node whose map is older
// can catch up before it answers.
func SetMapVersion(req *http.Request, r Route) {
	req.Header.Set(wire.HeaderMapVersion, strconv.FormatUint(r.MapVersion, 10))
}

// WithRetry routes key and calls fn with its route. If fn fails with a
// *NotOwnerError (see Check) from a node whose map is newer than the
// route's, or if the client's own map has moved on since, WithRetry
// refreshes the map, starting with the node that answered, waits until its
// version is at least the node's (at most the retry wait, WithRetryWait),
// and calls fn exactly once more with the new route. Any other result of fn
// is returned as is, so fn decides what else to retry.
//
// fn is also called when the partition has no primary (the route then
// lists the other owners and Route.Primary is nil). fn must be safe to call
// twice: the first attempt was refused by a node that did not own the key,
// so it changed nothing there.
func (c *Client) WithRetry(ctx context.Context, key string, fn func(Route) error) error {
	r, err := c.Route(key)
	if err != nil && !errors.Is(err, ErrNoPrimary) {
		return err
	}
	err = fn(r)
	var noe *NotOwnerError
	if !errors.As(err, &noe) {
		return err
	}
	if noe.MapVersion <= r.MapVersion && c.Version() <= r.MapVersion {
		// The node's map is not newer than ours: a retry would be routed
		// the same way.
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, c.opts.retryWait)
	defer cancel()
	if werr := c.refreshTo(wctx, noe.Addr, noe.MapVersion); werr != nil {
		return fmt.Errorf("%w (no newer map to retry with: %v)", err, werr)
	}
	r, rerr := c.Route(key)
	if rerr != nil && !errors.Is(rerr, ErrNoPrimary) {
		return rerr
	}
	return fn(r)
}

// refreshTo brings the client's map to at least version v, fetching it
// first from addr (a node known to have it), then from any node, then
// waiting for the watch.
func (c *Client) refreshTo(ctx context.Context, addr string, v uint64) error {
	if c.Version() >= v {
		return nil
	}
	if c.ctx.Err() != nil {
		return ErrClosed
	}
	if addr != "" {
		_ = c.refreshFrom(ctx, c.baseURL(addr))
		if c.Version() >= v {
			return nil
		}
	}
	if err := c.Refresh(ctx); err != nil && ctx.Err() != nil {
		return err
	}
	return c.WaitForVersion(ctx, v)
}
