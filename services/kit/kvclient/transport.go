package kvclient

import (
	"net"
	"net/http"
	"time"
)

// NewTransport returns a client's pool of keep-alive connections, sized
// for many concurrent requests to a handful of nodes (up to 256 idle
// connections to each), with a connect timeout of dial, no compression
// and HTTP/1.1 only.
func NewTransport(dial time.Duration) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}).DialContext
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	t.DisableCompression = true
	t.ForceAttemptHTTP2 = false
	return t
}
