package client

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Option changes how New builds a Client.
type Option func(*options)

type options struct {
	httpClient     *http.Client
	requestTimeout time.Duration
	dialTimeout    time.Duration
	fetchTimeout   time.Duration
	watchPing      time.Duration
	watch          bool
	watchWait      time.Duration
	retryWait      time.Duration
	startTimeout   time.Duration
	logger         *slog.Logger
	token          string
	tls            *tls.Config
}

func defaultOptions() options {
	return options{
		requestTimeout: 10 * time.Second,
		dialTimeout:    time.Second,
		fetchTimeout:   2 * time.Second,
		watchPing:      time.Second,
		watch:          true,
		watchWait:      30 * time.Second,
		retryWait:      2 * time.Second,
		startTimeout:   10 * time.Second,
		logger:         slog.New(slog.DiscardHandler),
	}
}

// WithHTTPClient makes the client use hc, for its own requests and as the
// client returned by HTTPClient, instead of building a pooled one. The
// client then leaves hc's idle connections alone on Close. The topology
// watch uses a copy of hc without its Timeout (it long-polls).
func WithHTTPClient(hc *http.Client) Option { return func(o *options) { o.httpClient = hc } }

// WithRequestTimeout bounds each request of the client returned by
// HTTPClient (http.Client.Timeout). Default 10s. It has no effect with
// WithHTTPClient. Map fetches are bounded by the fetch timeout
// (WithFetchTimeout) instead; service clients that need a shorter bound
// per call to a node give their requests a context deadline.
func WithRequestTimeout(d time.Duration) Option { return func(o *options) { o.requestTimeout = d } }

// WithDialTimeout bounds the TCP connect of the client's own transport, so
// that a seed or node whose machine is gone costs at most d before the next
// one is tried. Default 1s. It has no effect with WithHTTPClient, whose
// transport dials as it was built to.
func WithDialTimeout(d time.Duration) Option { return func(o *options) { o.dialTimeout = d } }

// WithFetchTimeout bounds one fetch of the map from one node, connect,
// answer and body included: in New, Refresh, the refresh of WithRetry and
// the watch's pings. A node that has not answered by then (a hung process
// or a stalled machine, whose kernel still accepts connections) is given
// up and the next node is tried. A long-poll is given its wait plus this
// much. Default 2s; a map of many partitions may need more on a slow
// network.
func WithFetchTimeout(d time.Duration) Option { return func(o *options) { o.fetchTimeout = d } }

// WithWatchWait sets how long one long-poll of GET /cluster may wait for a
// change before it is renewed. Default 30s. Changes are seen as soon as
// they are committed whatever this value, and a node that stops answering
// is found by the watch's pings (WithWatchPing), not by the end of the
// wait.
func WithWatchWait(d time.Duration) Option { return func(o *options) { o.watchWait = d } }

// WithWatchPing sets how often the watch checks, while a long-poll waits,
// that its node still answers: every d it asks the same node for the map
// with a short conditional GET /cluster (bounded by the fetch timeout,
// WithFetchTimeout). A node that does not answer has its long-poll
// abandoned, and the watch moves to another node at once, so a hung node
// delays the client's view of map changes by at most about d plus the
// fetch timeout (3s with the defaults). Default 1s; d <= 0 disables the
// pings, and a hung node then holds the watch for the wait plus the fetch
// timeout.
func WithWatchPing(d time.Duration) Option { return func(o *options) { o.watchPing = d } }

// WithoutWatch disables the background watch: the map is fetched by New
// and then only by Refresh and by WithRetry. For short-lived tools.
func WithoutWatch() Option { return func(o *options) { o.watch = false } }

// WithRetryWait bounds how long WithRetry waits for a newer map before its
// one retry. Default 2s.
func WithRetryWait(d time.Duration) Option { return func(o *options) { o.retryWait = d } }

// WithStartTimeout bounds how long New keeps trying the seeds when its
// context has no earlier deadline. Default 10s. Each seed is given at most
// the fetch timeout (WithFetchTimeout) before the next is tried, so a hung
// seed among live ones delays New by at most that much.
func WithStartTimeout(d time.Duration) Option { return func(o *options) { o.startTimeout = d } }

// WithToken sends the cluster token with the client's requests for the
// map, for clusters that need it for reads (ClusterKit's TokenForReads).
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithTLS makes the client speak HTTPS to the nodes with cfg (the
// cluster's CA in RootCAs; a certificate if the nodes ask for one):
// "host:port" addresses become https://host:port. Without WithHTTPClient
// the client's own transport uses cfg; with it, hc's transport must.
func WithTLS(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

// WithLogger makes the client log seed and watch failures to l. Default:
// no logs.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// newTransport returns a keep-alive transport sized for many concurrent
// requests to a handful of nodes: the default keeps only 2 idle
// connections per host, so a busy client would open and close a
// connection for most requests. Its connects give up after dialTimeout.
func newTransport(dialTimeout time.Duration) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 15 * time.Second}
	t.DialContext = d.DialContext
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	t.DisableCompression = true
	t.ForceAttemptHTTP2 = false
	return t
}
