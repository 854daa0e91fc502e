package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"clusterkit.dev/clusterkit"
)

// AwaitMap waits until ck's map reaches the version r was sent with (its
// clusterkit.HeaderMapVersion header), when that is newer than ck's: so
// that a node just made an owner accepts a request routed with the map
// that made it one. It waits at most d, and not past r's context; a
// request without the header, or sent with a map no newer than ck's, does
// not wait. Whether the map arrived is for the caller to check.
func AwaitMap(ck *clusterkit.ClusterKit, r *http.Request, d time.Duration) {
	v, err := strconv.ParseUint(r.Header.Get(clusterkit.HeaderMapVersion), 10, 64)
	if err != nil || v <= ck.Version() {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), d)
	defer cancel()
	_ = ck.WaitForMap(ctx, v)
}
