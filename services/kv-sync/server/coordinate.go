package server

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"

	ckclient "clusterkit.dev/clusterkit/client"
	"clusterkit.dev/services/kv-sync/client"
)

// coordinator runs quorum operations for requests that carry no version,
// from clients without the SDK (curl). It uses the same client an
// application would, seeded with this node's own address, so a request
// sent to a node costs one extra hop and gets the same guarantees: an
// operation returns on the first majority of owners, so that an owner that
// stopped answering delays nothing while the others answer, and each
// request to an owner is bounded by CallTimeout.
type coordinator struct {
	s *Server

	mu     sync.Mutex
	c      *client.Client
	closed bool
}

func newCoordinator(s *Server) *coordinator { return &coordinator{s: s} }

// client returns the coordinator's client, building it on first use: the
// node must be running to answer its map requests.
func (co *coordinator) client(ctx context.Context) (*client.Client, error) {
	co.mu.Lock()
	defer co.mu.Unlock()
	switch {
	case co.closed:
		return nil, errUnavailable("server closing")
	case co.c != nil:
		return co.c, nil
	}
	self := co.s.ck.Node(co.s.self)
	if self == nil {
		return nil, errUnavailable("this node is not in the cluster map yet")
	}
	opts := []client.Option{client.WithTimeout(co.s.cfg.QuorumTimeout), client.WithCallTimeout(co.s.cfg.CallTimeout),
		client.WithSDKOptions(ckclient.WithLogger(co.s.log)), client.WithToken(co.s.cfg.ClusterToken)}
	if tc := co.s.ck.TLSClientConfig(); tc != nil {
		opts = append(opts, client.WithTLS(tc))
	}
	c, err := client.New(ctx, []string{self.IP}, opts...)
	if err != nil {
		return nil, errUnavailable("start quorum client: " + err.Error())
	}
	co.c = c
	return c, nil
}

// lag is the replication lag of the owners the coordinator's quorums wrote
// to, and of every other node of this node's map at 0 (before the first
// quorum too): each node's series exist from the time it is in the map.
func (co *coordinator) lag() []client.NodeLag {
	co.mu.Lock()
	c := co.c
	co.mu.Unlock()
	var lag []client.NodeLag
	if c != nil {
		lag = c.Lag()
	}
	seen := make(map[string]bool, len(lag))
	for _, l := range lag {
		seen[l.Node] = true
	}
	for _, n := range co.s.ck.Nodes() {
		if !seen[n.ID] {
			lag = append(lag, client.NodeLag{Node: n.ID})
		}
	}
	slices.SortFunc(lag, func(a, b client.NodeLag) int { return strings.Compare(a.Node, b.Node) })
	return lag
}

// close closes the client once its background writes are done.
func (co *coordinator) close() {
	co.mu.Lock()
	c := co.c
	co.closed, co.c = true, nil
	co.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

// coordinate runs op with the coordinator's client and answers its result:
// 200 with the answer, 404 for client.ErrNotFound, 503 when no quorum
// answered.
func (s *Server) coordinate(w http.ResponseWriter, r *http.Request, key string,
	op func(context.Context, *client.Client) (any, error)) int {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.QuorumTimeout)
	defer cancel()
	c, err := s.coord.client(ctx)
	if err != nil {
		return s.writeError(w, err)
	}
	answer, err := op(ctx, c)
	switch {
	case err == nil:
		return s.writeJSON(w, http.StatusOK, answer)
	case errors.Is(err, client.ErrNotFound):
		return s.writeJSON(w, http.StatusNotFound, errorBody{Error: "key not found"})
	case errors.Is(err, client.ErrInvalid):
		return s.writeError(w, errBadRequest(err.Error()))
	}
	return s.writeError(w, errUnavailable("quorum "+key+": "+err.Error()))
}
