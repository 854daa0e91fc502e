package clusterkit

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"clusterkit.dev/clusterkit/internal/state"
)

// newEcho builds the HTTP API. Every error answer is JSON: {"error": "..."}.
func (ck *ClusterKit) newEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = errorHandler
	e.Use(middleware.Recover())
	e.Pre(readDeadline(requestReadTimeout))

	// The body limit guards the library's routes only: an application
	// serving its own routes on the same echo sets its own limits.
	limit := middleware.BodyLimit("1M") // larger bodies get 413
	// Changes need the cluster token when there is one; reads only with
	// TokenForReads. /health and the page's static files stay open.
	change, read := ck.RequireToken(), ck.readAuth()
	change, read = chain(writeDeadline, change), chain(writeDeadline, read)
	e.GET("/cluster", ck.handleCluster, read)
	e.POST("/cluster/join", ck.handleJoin, change, limit)
	e.POST("/cluster/leave", ck.handleLeave, change, limit)
	e.POST("/cluster/drain", ck.handleDrain, change, limit)
	e.GET("/cluster/formation", ck.handleFormation, read)
	e.POST("/cluster/formation", ck.handlePromise, change, limit)
	e.GET("/partitions", ck.handlePartitions, read)
	e.GET("/partitions/stats", ck.handlePartitionStats, read)
	e.GET("/partitions/key", ck.handlePartitionKey, read)
	e.GET("/partitions/history", ck.handlePartitionHistory, read)
	e.GET("/partitions/explain", ck.leaderOnly(ck.handleExplain), read)
	e.GET("/partitions/sizes", ck.handlePartitionSizes, read)
	e.GET("/cluster/plan", ck.leaderOnly(ck.handlePlan), read)
	e.POST("/partitions/ready", ck.handleReady, change, limit)
	e.GET("/consensus/leader", ck.handleLeader, read)
	e.GET("/consensus/stats", ck.handleConsensusStats, read)
	e.GET("/health", ck.handleHealth, writeDeadline)
	e.GET("/health/detailed", ck.handleHealthDetailed, read)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(ck.metrics.registry, promhttp.HandlerOpts{})), read)
	e.GET("/ui", func(c echo.Context) error { return c.Redirect(http.StatusMovedPermanently, "/ui/") }, writeDeadline)
	e.GET("/ui/*", uiHandler(), writeDeadline)
	return e
}

// chain is middleware a then b.
func chain(a, b echo.MiddlewareFunc) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc { return a(b(next)) }
}

// StatusCode maps an error of this package to its HTTP status.
func StatusCode(err error) int {
	var fe *FieldError
	var he *echo.HTTPError
	var re *HTTPError
	switch {
	case errors.As(err, &he):
		return he.Code
	case errors.As(err, &re):
		return re.Code
	case errors.As(err, &fe), errors.Is(err, state.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrConflict), errors.Is(err, ErrStaleVersion):
		return http.StatusConflict
	case errors.Is(err, ErrUnknownNode):
		return http.StatusNotFound
	case errors.Is(err, ErrNoLeader), errors.Is(err, ErrNotLeader), errors.Is(err, ErrNoPartitionMap),
		errors.Is(err, ErrNotStarted), errors.Is(err, ErrStopped):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code := StatusCode(err)
	msg := err.Error()
	var he *echo.HTTPError
	if errors.As(err, &he) {
		if m, ok := he.Message.(string); ok {
			msg = m
		} else {
			msg = http.StatusText(he.Code)
		}
		if he.Internal != nil {
			msg += ": " + he.Internal.Error()
		}
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(code)
		return
	}
	_ = c.JSON(code, ErrorBody{Error: msg})
}

// badRequest is a 400 naming the field.
func badRequest(field, reason string) error {
	return &FieldError{Field: field, Reason: reason}
}
