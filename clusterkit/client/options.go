package client

import (
	"log/slog"
	"net/http"
	"time"
)

// Option changes how New builds a Client.
type Option func(*options)

type options struct {
	httpClient     *http.Client
	requestTimeout time.Duration
	watch          bool
	watchWait      time.Duration
	retryWait      time.Duration
	startTimeout   time.Duration
	logger         *slog.Logger
}

func defaultOptions() options {
	return options{
		requestTimeout: 10 * time.Second,
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
// WithHTTPClient.
func WithRequestTimeout(d time.Duration) Option { return func(o *options) { o.requestTimeout = d } }

// WithWatchWait sets how long one long-poll of GET /cluster may wait for a
// change before it is renewed. Default 30s. Changes are seen as soon as
// they are committed whatever this value; it only bounds how long a dead
// connection goes unnoticed.
func WithWatchWait(d time.Duration) Option { return func(o *options) { o.watchWait = d } }

// WithoutWatch disables the background watch: the map is fetched by New
// and then only by Refresh and by WithRetry. For short-lived tools.
func WithoutWatch() Option { return func(o *options) { o.watch = false } }

// WithRetryWait bounds how long WithRetry waits for a newer map before its
// one retry. Default 2s.
func WithRetryWait(d time.Duration) Option { return func(o *options) { o.retryWait = d } }

// WithStartTimeout bounds how long New keeps trying the seeds when its
// context has no earlier deadline. Default 10s.
func WithStartTimeout(d time.Duration) Option { return func(o *options) { o.startTimeout = d } }

// WithLogger makes the client log seed and watch failures to l. Default:
// no logs.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// newTransport returns a keep-alive transport sized for many concurrent
// requests to a handful of nodes: the default keeps only 2 idle
// connections per host, so a busy client would open and close a
// connection for most requests.
func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	t.DisableCompression = true
	t.ForceAttemptHTTP2 = false
	return t
}
