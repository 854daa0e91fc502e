// Package service holds the plumbing a service's server shares with the
// others on its node: how it attaches to its ClusterKit (Attach), and the
// route that sends a partition to the node copying it (ServeStream).
package service

import (
	"net/http"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kit/api"
)

// Attach attaches a service's server to ck; call it before ck.Start, so
// that onEvent sees every change. h serves the routes under api.Prefix
// ahead of the library's router, those under api.InternalPrefix and those
// guarded names needing the cluster token (api.Intercept). onEvent
// handles ck's partition events. size returns how many bytes of a
// partition the node holds, which the leader's dry runs (GET
// /cluster/plan) count; a partition whose size fails is left out of them.
func Attach(ck *clusterkit.ClusterKit, h http.Handler, guarded func(*http.Request) bool,
	onEvent clusterkit.PartitionEventHandler, size func(p int) (int64, error)) {
	ck.Echo().Pre(api.Intercept(ck, h, guarded))
	ck.OnPartitionEvent(onEvent)
	ck.SetPartitionSizes(func(p int) (int64, bool) {
		n, err := size(p)
		return n, err == nil
	})
}
