package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"clusterkit.dev/clusterkit"
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
// one fails or lags behind the client's map.
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
		case notModified:
			// Move on to the next node for the next poll, so that a node
			// cut off from the cluster (whose map no longer changes) cannot
			// hold the watch.
			pause = minWatchPause
			next++
			continue
		case info.Version < cur.Version:
			err = fmt.Errorf("map version %d is older than %d", info.Version, cur.Version)
			c.log.Debug("topology watch: node lags, trying another", "node", addr, "err", err)
		default:
			if _, err = c.publish(info); err == nil {
				c.last.Store(&addr)
				pause, next = minWatchPause, 0
				continue
			}
			c.log.Warn("topology watch: unusable map", "node", addr, "err", err)
		}
		next++
		select {
		case <-c.ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, maxWatchPause)
	}
}

// fetch gets GET /cluster from base. With haveVersion > 0 it sends the
// matching ETag and, with wait > 0, long-polls: notModified is true when
// the map is still at haveVersion.
func (c *Client) fetch(ctx context.Context, base string, haveVersion uint64, wait time.Duration) (info *clusterkit.ClusterInfo, notModified bool, err error) {
	url := base + "/cluster"
	hc := c.hc
	if wait > 0 {
		url += "?wait=" + wait.String()
		hc = c.watchHC
		// A long-poll answers within wait; allow for a slow answer on top.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, wait+10*time.Second)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, false, err
	}
	if haveVersion > 0 {
		req.Header.Set("If-None-Match", `"`+strconv.FormatUint(haveVersion, 10)+`"`)
	}
	resp, err := hc.Do(req)
	if err != nil {
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
	info = new(clusterkit.ClusterInfo)
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxMapBytes)).Decode(info); err != nil {
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
	var body clusterkit.ErrorBody
	if json.Unmarshal(b, &body) == nil && body.Error != "" {
		msg = body.Error
	} else if len(b) > 0 {
		msg = string(b)
	} else {
		msg = http.StatusText(resp.StatusCode)
	}
	return &StatusError{Addr: addr, Code: resp.StatusCode, Message: msg}
}
