package clusterkit

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"clusterkit.dev/clusterkit/internal/state"
)

// forwardedHeader marks a request a member forwarded to the leader; a
// forwarded request is never forwarded again.
const forwardedHeader = "X-Clusterkit-Forwarded"

// maxWait caps the long-poll of GET /cluster?wait=.
const maxWait = 5 * time.Minute

// etag is the ETag of the map at version v. The version increases with
// every committed change, so any change of assignment changes the ETag.
func etag(v uint64) string { return `"` + strconv.FormatUint(v, 10) + `"` }

// handleCluster serves GET /cluster. With If-None-Match equal to the
// current ETag it answers 304, or, with ?wait=<duration> (at most 5m), waits
// until the map changes or the wait ends.
func (ck *ClusterKit) handleCluster(c echo.Context) error {
	wait, err := durationParam(c, "wait", maxWait)
	if err != nil {
		return err
	}
	match := c.Request().Header.Get("If-None-Match")
	v := ck.view.Load()
	if v != nil && match == etag(v.version) && wait > 0 {
		extendWriteDeadline(c, wait)
		t := time.NewTimer(wait)
		defer t.Stop()
		for v != nil && match == etag(v.version) {
			ch := ck.viewChanged.Load()
			if v = ck.view.Load(); match != etag(v.version) {
				break
			}
			select {
			case <-*ch:
				v = ck.view.Load()
			case <-t.C:
				return c.NoContent(http.StatusNotModified)
			case <-c.Request().Context().Done():
				return c.NoContent(http.StatusNotModified)
			}
		}
	}
	if v == nil {
		return fmt.Errorf("no cluster state yet: %w", ErrNoPartitionMap)
	}
	c.Response().Header().Set("ETag", etag(v.version))
	if match == etag(v.version) {
		return c.NoContent(http.StatusNotModified)
	}
	info := ClusterInfo{
		ClusterName: v.clusterName, Version: v.version, PartitionCount: v.partitionCount,
		ReplicationFactor: v.replicationFactor, Nodes: v.nodeList, Partitions: v.partitions,
	}
	if l := ck.Leader(); l != nil {
		info.LeaderID = l.ID
	}
	if info.Nodes == nil {
		info.Nodes = []Node{}
	}
	if info.Partitions == nil {
		info.Partitions = []Partition{}
	}
	return c.JSON(http.StatusOK, info)
}

// handleJoin serves POST /cluster/join: on the leader it adds the node;
// elsewhere it forwards the request to the leader.
func (ck *ClusterKit) handleJoin(c echo.Context) error {
	var req JoinRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := validateJoin(req); err != nil {
		return err
	}
	if !ck.IsLeader() {
		var resp JoinResponse
		if err := ck.forward(c, "/cluster/join", req, &resp); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, resp)
	}
	resp, err := ck.addMember(req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, resp)
}

// handleLeave serves POST /cluster/leave.
func (ck *ClusterKit) handleLeave(c echo.Context) error {
	var req LeaveRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.ID == "" {
		return badRequest("id", "required")
	}
	if !ck.IsLeader() {
		if err := ck.forward(c, "/cluster/leave", req, nil); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "left"})
	}
	if ck.Node(req.ID) == nil {
		return fmt.Errorf("%w: %q", ErrUnknownNode, req.ID)
	}
	if err := ck.removeMember(req.ID); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "left"})
}

// handleDrain serves POST /cluster/drain, forwarded to the leader.
func (ck *ClusterKit) handleDrain(c echo.Context) error {
	var req DrainRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.ID == "" {
		return badRequest("id", "required")
	}
	draining := req.Draining == nil || *req.Draining
	req.Draining = &draining
	if !ck.IsLeader() {
		if err := ck.forward(c, "/cluster/drain", req, nil); err != nil {
			return err
		}
	} else if ck.Node(req.ID) == nil {
		return fmt.Errorf("%w: %q", ErrUnknownNode, req.ID)
	} else if _, err := ck.apply(state.Command{Op: state.OpSetDraining, NodeID: req.ID, Draining: draining}); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"id": req.ID, "draining": draining})
}

// forward sends a membership request to the leader on behalf of the caller.
func (ck *ClusterKit) forward(c echo.Context, path string, body, out any) error {
	if c.Request().Header.Get(forwardedHeader) != "" {
		return fmt.Errorf("forwarded request reached a follower: %w", ErrNotLeader)
	}
	leader := ck.Leader()
	if leader == nil {
		return ErrNoLeader
	}
	hdr := http.Header{forwardedHeader: []string{ck.opts.NodeID}}
	err := ck.postWith(c.Request().Context(), leader.IP, path, body, out, hdr)
	var he *HTTPError
	if err != nil && !errors.As(err, &he) {
		return fmt.Errorf("forward to leader %s: %v: %w", leader.ID, err, ErrNoLeader)
	}
	return err
}

// decodeJSON decodes the request body into v; a malformed body is a 400 and
// an oversized one a 413.
func decodeJSON(c echo.Context, v any) error {
	dec := json.NewDecoder(c.Request().Body)
	if err := dec.Decode(v); err != nil {
		var he *echo.HTTPError
		if errors.As(err, &he) {
			return he
		}
		return echo.NewHTTPError(http.StatusBadRequest, "malformed JSON body: "+err.Error())
	}
	if dec.More() {
		return echo.NewHTTPError(http.StatusBadRequest, "malformed JSON body: trailing data")
	}
	return nil
}

// intParam parses an optional integer query parameter in [lo, hi].
func intParam(c echo.Context, name string, def, lo, hi int) (int, error) {
	s := c.QueryParam(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, badRequest(name, fmt.Sprintf("%q is not an integer", s))
	}
	if n < lo || n > hi {
		return 0, badRequest(name, fmt.Sprintf("%d is outside %d..%d", n, lo, hi))
	}
	return n, nil
}

// durationParam parses an optional duration query parameter in [0, hi].
func durationParam(c echo.Context, name string, hi time.Duration) (time.Duration, error) {
	s := c.QueryParam(name)
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, badRequest(name, fmt.Sprintf("%q is not a duration like 30s", s))
	}
	if d < 0 || d > hi {
		return 0, badRequest(name, fmt.Sprintf("%v is outside 0..%v", d, hi))
	}
	return d, nil
}
