package node

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"clusterkit.dev/clusterkit"
)

// NewClient returns the client of node-to-node requests: keep-alive
// connections pooled per node (perNode idle ones at most), a short dial
// timeout so that a dead node is noticed at once, no compression, and
// per-request deadlines from contexts. tlsConf is the node's client TLS
// configuration (ClusterKit.TLSClientConfig), nil without TLS.
func NewClient(tlsConf *tls.Config, perNode int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:     tlsConf,
		DialContext:         (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        4 * perNode,
		MaxIdleConnsPerHost: perNode,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
}

// NewRequest returns a request from this node (ck's) to node: with the
// cluster token, if there is one, and this node's map version, so that a
// receiver with an older map can wait for the newer one.
func NewRequest(ctx context.Context, ck *clusterkit.ClusterKit, node *clusterkit.Node, method, uri string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, ck.Scheme()+"://"+node.IP+uri, body)
	if err != nil {
		return nil, err
	}
	ck.AuthorizeRequest(req)
	req.Header.Set(clusterkit.HeaderMapVersion, strconv.FormatUint(ck.Version(), 10))
	return req, nil
}
