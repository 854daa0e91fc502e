package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"clusterkit.dev/clusterkit"
)

// Results, the result label of <prefix>_requests_total: what the answer's
// status says (Result).
const (
	ResultOK          = "ok"
	ResultNotFound    = "not_found"
	ResultBadRequest  = "bad_request"
	ResultTooLarge    = "too_large"
	ResultNotOwner    = "not_owner"
	ResultUnavailable = "unavailable"
	ResultError       = "error"
)

// Results are every value of the result label.
var Results = []string{ResultOK, ResultNotFound, ResultBadRequest, ResultTooLarge,
	ResultNotOwner, ResultUnavailable, ResultError}

// Result returns the result label of an answer's status.
func Result(status int) string {
	switch {
	case status < 300:
		return ResultOK
	case status == http.StatusNotFound:
		return ResultNotFound
	case status == http.StatusRequestEntityTooLarge:
		return ResultTooLarge
	case status == clusterkit.StatusNotOwner:
		return ResultNotOwner
	case status == http.StatusServiceUnavailable, status == http.StatusGatewayTimeout:
		return ResultUnavailable
	case status < 500:
		return ResultBadRequest
	}
	return ResultError
}

// RequestMetrics count a service's requests and time them:
// <prefix>_requests_total{op, role, result} and
// <prefix>_request_duration_seconds{op, role}. What an op and a role are
// is the service's.
type RequestMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewRequestMetrics returns the request metrics named with prefix, with
// every combination of roles (each op's roles) and result at 0, so that a
// rate sees the first event and a query of a failure has a series to
// show. help describes the roles, latency what the time covers.
func NewRequestMetrics(prefix string, roles map[string][]string, help, latency string) *RequestMetrics {
	m := &RequestMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: prefix + "_requests_total",
			Help: help,
		}, []string{"op", "role", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    prefix + "_request_duration_seconds",
			Help:    latency,
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"op", "role"}),
	}
	for op, rs := range roles {
		for _, role := range rs {
			m.latency.WithLabelValues(op, role)
			for _, r := range Results {
				m.requests.WithLabelValues(op, role, r)
			}
		}
	}
	return m
}

// Observe counts one finished request, begun at start.
func (m *RequestMetrics) Observe(op, role, result string, start time.Time) {
	m.requests.WithLabelValues(op, role, result).Inc()
	m.latency.WithLabelValues(op, role).Observe(time.Since(start).Seconds())
}

// Collectors returns the collectors, to register.
func (m *RequestMetrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.latency}
}

// Register registers a service's collectors on reg (the node's registry,
// ClusterKit.Registry). A second server on one ClusterKit is an error
// naming the service.
func Register(reg prometheus.Registerer, service string, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return fmt.Errorf("%s metrics are already registered on this node's registry: one server per ClusterKit", service)
			}
			return fmt.Errorf("register the %s metrics: %w", service, err)
		}
	}
	return nil
}

// Refuse answers a request the node does not serve now: 503 with why
// (api.Unavailable, so Retry-After: 1) and mapVersion. It counts the
// request as op with role, unless op is "" (a route the service does not
// count), and returns the status written.
func (m *RequestMetrics) Refuse(w http.ResponseWriter, mapVersion uint64, op, role, why string) int {
	start := time.Now()
	status := Write(w, mapVersion, ErrorReply(Unavailable(why)))
	if op != "" {
		m.Observe(op, role, Result(status), start)
	}
	return status
}

// Counted returns the handler of a route whose requests count as op:
// serve answers a request and returns the role it served it in and the
// status it wrote, which Observe counts, timed from the request's start.
func (m *RequestMetrics) Counted(op string, serve func(http.ResponseWriter, *http.Request) (role string, status int)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		role, status := serve(w, r)
		m.Observe(op, role, Result(status), start)
	}
}
