package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"clusterkit.dev/clusterkit/wire"
)

// maxAdminBytes caps an operator endpoint's answer (a 65,536-partition
// map is about 15 MB).
const maxAdminBytes = 256 << 20

// Admin calls the HTTP API of one node for an operator: health, the map,
// plans, history, drains. Any node answers: it passes to the leader what
// needs the leader. Unlike Client, Admin keeps no map and starts nothing.
// Errors are *StatusError for an answer that is not 2xx, or the transport's
// error when the node did not answer.
type Admin struct {
	base   string
	hc     *http.Client
	header http.Header
	tls    *tls.Config
}

// AdminOption configures an Admin.
type AdminOption func(*Admin)

// WithAdminHTTPClient sets the HTTP client (default: a client with no
// timeout of its own; bound calls with their context).
func WithAdminHTTPClient(hc *http.Client) AdminOption { return func(a *Admin) { a.hc = hc } }

// WithAdminToken sends "Authorization: Bearer <token>" with every
// request: the cluster token (ClusterKit's ClusterToken), which drains and
// leaves need, and reads too with TokenForReads.
func WithAdminToken(token string) AdminOption {
	return func(a *Admin) {
		if token != "" {
			a.header.Set("Authorization", "Bearer "+token)
		}
	}
}

// WithAdminTLS makes the Admin speak HTTPS, verifying the node with cfg
// (the cluster's CA in RootCAs): "host:port" becomes https://host:port.
// It replaces the transport of the HTTP client.
func WithAdminTLS(cfg *tls.Config) AdminOption {
	return func(a *Admin) {
		a.tls = cfg
		hc := *a.hc
		hc.Transport = &http.Transport{TLSClientConfig: cfg}
		a.hc = &hc
	}
}

// NewAdmin returns an Admin for the node at addr ("host:port",
// "http://host:port" or "https://host:port").
func NewAdmin(addr string, opts ...AdminOption) *Admin {
	a := &Admin{hc: &http.Client{}, header: http.Header{}}
	for _, fn := range opts {
		fn(a)
	}
	a.base = baseURL(addr, a.tls != nil)
	return a
}

// Addr returns the base URL of the node.
func (a *Admin) Addr() string { return a.base }

// call sends one request and decodes a 2xx JSON answer into out; a 304
// decodes nothing. It returns the status and the answer's headers.
func (a *Admin) call(ctx context.Context, method, path string, body, out any, hdr http.Header) (int, http.Header, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	for k, v := range a.header {
		req.Header[k] = v
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer drainClose(resp.Body)
	if resp.StatusCode == http.StatusNotModified {
		return resp.StatusCode, resp.Header, nil
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, resp.Header, statusError(req.URL.Host, resp)
	}
	if out != nil {
		if err := json.NewDecoder(io.LimitReader(resp.Body, maxAdminBytes)).Decode(out); err != nil {
			return resp.StatusCode, resp.Header, fmt.Errorf("client: decode %s from %s: %w", path, req.URL.Host, err)
		}
	}
	return resp.StatusCode, resp.Header, nil
}

func (a *Admin) get(ctx context.Context, path string, out any) error {
	_, _, err := a.call(ctx, http.MethodGet, path, nil, out, nil)
	return err
}

// Cluster returns the node's map (GET /cluster).
func (a *Admin) Cluster(ctx context.Context) (*wire.ClusterInfo, error) {
	info := new(wire.ClusterInfo)
	return info, a.get(ctx, "/cluster", info)
}

// WaitCluster long-polls GET /cluster: it returns the map once its
// version differs from version, or (nil, nil) when wait passes first.
func (a *Admin) WaitCluster(ctx context.Context, version uint64, wait time.Duration) (*wire.ClusterInfo, error) {
	info := new(wire.ClusterInfo)
	hdr := http.Header{"If-None-Match": []string{`"` + strconv.FormatUint(version, 10) + `"`}}
	code, _, err := a.call(ctx, http.MethodGet, "/cluster?wait="+wait.String(), nil, info, hdr)
	if err != nil || code == http.StatusNotModified {
		return nil, err
	}
	return info, nil
}

// Health returns GET /health/detailed. A node that answers 503 still
// describes itself: the body is returned with the *StatusError.
func (a *Admin) Health(ctx context.Context) (*wire.Health, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/health/detailed", nil)
	if err != nil {
		return nil, err
	}
	for k, v := range a.header {
		req.Header[k] = v
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer drainClose(resp.Body)
	h := new(wire.Health)
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAdminBytes)).Decode(h); err != nil {
		return nil, fmt.Errorf("client: decode health from %s: %w", req.URL.Host, err)
	}
	if resp.StatusCode != http.StatusOK {
		return h, &StatusError{Addr: req.URL.Host, Code: resp.StatusCode, Message: h.Reason}
	}
	return h, nil
}

// Leader returns GET /consensus/leader.
func (a *Admin) Leader(ctx context.Context) (*wire.LeaderInfo, error) {
	info := new(wire.LeaderInfo)
	return info, a.get(ctx, "/consensus/leader", info)
}

// Stats returns GET /partitions/stats.
func (a *Admin) Stats(ctx context.Context) (*wire.PartitionStats, error) {
	s := new(wire.PartitionStats)
	return s, a.get(ctx, "/partitions/stats", s)
}

// Key returns GET /partitions/key: key's partition and owners.
func (a *Admin) Key(ctx context.Context, key string) (*wire.KeyInfo, error) {
	k := new(wire.KeyInfo)
	return k, a.get(ctx, "/partitions/key?key="+url.QueryEscape(key), k)
}

// Plan returns GET /cluster/plan for change: what the leader would do,
// committing nothing.
func (a *Admin) Plan(ctx context.Context, change wire.PlanChange) (*wire.PlanInfo, error) {
	q := url.Values{}
	if len(change.Join) > 0 {
		q.Set("join", strings.Join(change.Join, ","))
		if change.Zone != "" {
			q.Set("zone", change.Zone)
		}
		if change.Weight != 0 {
			q.Set("weight", strconv.Itoa(change.Weight))
		}
	}
	if len(change.Leave) > 0 {
		q.Set("leave", strings.Join(change.Leave, ","))
	}
	if len(change.Drain) > 0 {
		q.Set("drain", strings.Join(change.Drain, ","))
	}
	p := new(wire.PlanInfo)
	return p, a.get(ctx, "/cluster/plan?"+q.Encode(), p)
}

// Explain returns GET /partitions/explain for partition.
func (a *Admin) Explain(ctx context.Context, partition int) (*wire.ExplainInfo, error) {
	e := new(wire.ExplainInfo)
	return e, a.get(ctx, "/partitions/explain?partition="+strconv.Itoa(partition), e)
}

// History returns GET /partitions/history for partition.
func (a *Admin) History(ctx context.Context, partition int) (*wire.PartitionHistory, error) {
	h := new(wire.PartitionHistory)
	return h, a.get(ctx, "/partitions/history?partition="+strconv.Itoa(partition), h)
}

// NodeHistory returns GET /partitions/history for node: the newest limit
// changes in which it gained or lost a partition or a primary role.
func (a *Admin) NodeHistory(ctx context.Context, node string, limit int) (*wire.PartitionHistory, error) {
	h := new(wire.PartitionHistory)
	return h, a.get(ctx, "/partitions/history?node="+url.QueryEscape(node)+"&limit="+strconv.Itoa(limit), h)
}

// Drain starts draining node (draining true) or cancels a drain (false)
// through POST /cluster/drain.
func (a *Admin) Drain(ctx context.Context, node string, draining bool) error {
	_, _, err := a.call(ctx, http.MethodPost, "/cluster/drain", wire.DrainRequest{ID: node, Draining: &draining}, nil, nil)
	return err
}

// Leave removes node from the cluster through POST /cluster/leave. The
// node's partitions move to the others; unlike the node's own Leave, it is
// not drained first.
func (a *Admin) Leave(ctx context.Context, node string) error {
	_, _, err := a.call(ctx, http.MethodPost, "/cluster/leave", wire.LeaveRequest{ID: node}, nil, nil)
	return err
}
