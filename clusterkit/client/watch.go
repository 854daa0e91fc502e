package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"clusterkit.dev/clusterkit/wire"
)

// Pauses of the watch after a failed long-poll: doubled after each
// failure, reset by a success.
const (
	minWatchPause = 50 * time.Millisecond
	maxWatchPause = 2 * time.Second
)

// maxMapBytes caps a GET /cluster body.
const maxMapBytes = 64 << 20

// watch long-polls GET /cluster until Close, moving to another node when
// one fails, stops answering its pings or lags behind the client's map.
func (c *Client) watch() {
	defer close(c.done)
	pause := minWatchPause
	next := 0
	for c.ctx.Err() == nil {
		addrs := c.addresses()
		addr := addrs[next%len(addrs)]
		cur := c.topo.Load()
		info, notModified, err := c.fetch(c.ctx, addr, cur.Version, c.opts.watchWait)
		switch {
		case c.ctx.Err() != nil:
			return
		case err != nil:
			c.log.Warn("topology watch failed, trying another node", "node", addr, "err", err)
			c.markFailed(addr)
			// The failed node now comes after the others: start again from
			// the best one, at once unless it failed recently too.
			next = 0
			if !c.suspect(c.addresses()[0]) {
				continue
			}
		case notModified:
			// Move on to the next node for the next poll, so that a node
			// cut off from the cluster (whose map no longer changes) cannot
			// hold the watch.
			c.clearFailed(addr)
			pause = minWatchPause
			next++
			continue
		case info.Version < cur.Version:
			err = fmt.Errorf("map version %d is older than %d", info.Version, cur.Version)
			c.log.Debug("topology watch: node lags, trying another", "node", addr, "err", err)
			next++
		default:
			if _, err = c.publish(info); err == nil {
				c.markAnswered(addr)
				pause, next = minWatchPause, 0
				continue
			}
			c.log.Warn("topology watch: unusable map", "node", addr, "err", err)
			next++
		}
		select {
		case <-c.ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, maxWatchPause)
	}
}

// errNoAnswer is the cause of a fetch given up because its node did not
// answer in time.
var errNoAnswer = errors.New("node did not answer in time")

// fetch gets GET /cluster from base, within the fetch timeout. With
// haveVersion > 0 it sends the matching ETag and, with wait > 0,
// long-polls: notModified is true when the map is still at haveVersion. A
// long-poll is given wait plus the fetch timeout, and, with the watch's
// pings on, is abandoned as soon as its node fails to answer a ping.
func (c *Client) fetch(ctx context.Context, base string, haveVersion uint64, wait time.Duration) (info *wire.ClusterInfo, notModified bool, err error) {
	if wait <= 0 {
		ctx, cancel := context.WithTimeoutCause(ctx, c.opts.fetchTimeout, errNoAnswer)
		defer cancel()
		return c.get(ctx, c.hc, base, haveVersion, 0)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ctx, cancelWait := context.WithTimeoutCause(ctx, wait+c.opts.fetchTimeout, errNoAnswer)
	defer cancelWait()
	if c.opts.watchPing > 0 && haveVersion > 0 {
		stop := make(chan struct{})
		pinged := make(chan struct{})
		go func() {
			defer close(pinged)
			c.ping(ctx, stop, base, haveVersion, cancel)
		}()
		defer func() {
			close(stop)
			<-pinged
		}()
	}
	return c.get(ctx, c.watchHC, base, haveVersion, wait)
}

// ping asks base for the map every ping period until stop is closed or ctx
// is done, each time within the fetch timeout, and cancels the long-poll
// with cancel when base does not answer. A newer map in an answer is
// installed.
func (c *Client) ping(ctx context.Context, stop <-chan struct{}, base string, haveVersion uint64, cancel context.CancelCauseFunc) {
	t := time.NewTicker(c.opts.watchPing)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, pcancel := context.WithTimeoutCause(ctx, c.opts.fetchTimeout, errNoAnswer)
		info, _, err := c.get(pctx, c.hc, base, haveVersion, 0)
		pcancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			cancel(fmt.Errorf("client: %s failed a ping during a long-poll: %w", base, err))
			return
		case info != nil:
			_, _ = c.publish(info)
		}
	}
}

// get sends one GET /cluster to base with hc. With haveVersion > 0 it
// sends the matching ETag, and with wait > 0 asks the node to hold its
// answer until the map changes or wait ends.
func (c *Client) get(ctx context.Context, hc *http.Client, base string, haveVersion uint64, wait time.Duration) (info *wire.ClusterInfo, notModified bool, err error) {
	url := base + "/cluster"
	if wait > 0 {
		url += "?wait=" + wait.String()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, false, err
	}
	if c.opts.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.opts.token)
	}
	if haveVersion > 0 {
		req.Header.Set("If-None-Match", `"`+strconv.FormatUint(haveVersion, 10)+`"`)
	}
	resp, err := hc.Do(req)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && cause != ctx.Err() {
			return nil, false, fmt.Errorf("client: GET %s: %w", url, cause)
		}
		return nil, false, err
	}
	defer drainClose(resp.Body)
	switch resp.StatusCode {
	case http.StatusNotModified:
		return nil, true, nil
	case http.StatusOK:
	default:
		return nil, false, statusError(req.URL.Host, resp)
	}
	info = new(wire.ClusterInfo)
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxMapBytes)).Decode(info); err != nil {
		if cause := context.Cause(ctx); cause != nil && cause != ctx.Err() {
			err = fmt.Errorf("%w (%v)", cause, err)
		}
		return nil, false, fmt.Errorf("client: decode map from %s: %w", req.URL.Host, err)
	}
	if info.PartitionCount == 0 || len(info.Partitions) == 0 {
		return nil, false, fmt.Errorf("%w: %s has no partitions yet (map version %d)", ErrNoTopology, req.URL.Host, info.Version)
	}
	return info, false, nil
}

// drainClose reads a little of what is left of body, so that the
// connection can be reused, and closes it.
func drainClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	_ = body.Close()
}

// statusError turns a non-2xx answer into a *StatusError.
func statusError(addr string, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	msg := ""
	var body wire.ErrorBody
	if json.Unmarshal(b, &body) == nil && body.Error != "" {
		msg = body.Error
	} else if len(b) > 0 {
		msg = string(b)
	} else {
		msg = http.StatusText(resp.StatusCode)
	}
	return &StatusError{Addr: addr, Code: resp.StatusCode, Message: msg}
}
