package clusterkit

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// PartitionSizeFunc reports how many bytes the application holds for a
// partition on this node; ok is false when it does not know.
type PartitionSizeFunc func(partition int) (bytes int64, ok bool)

// SetPartitionSizes tells the node how to learn the size of the
// partitions its application holds. GET /partitions/sizes answers with it
// for the partitions the node owns, and GET /cluster/plan uses the answers
// of the copy sources to say how many bytes a change would copy; set it on
// every node (a leader without one asks no node for sizes). fn is
// called from HTTP handlers, concurrently, and must be fast and safe for
// concurrent use. A nil fn stops the reports. It may be called at any
// time, before or after Start.
func (ck *ClusterKit) SetPartitionSizes(fn PartitionSizeFunc) {
	if fn == nil {
		ck.sizes.Store(nil)
		return
	}
	ck.sizes.Store(&fn)
}

// localSizes returns the sizes the application reports for the
// partitions this node owns (primary or replica) in view v.
func (ck *ClusterKit) localSizes(v *view) map[int]int64 {
	out := map[int]int64{}
	fn := ck.sizes.Load()
	if fn == nil || v == nil {
		return out
	}
	for i := range v.partitions {
		if owns(&v.partitions[i], ck.opts.NodeID) {
			if n, ok := (*fn)(i); ok {
				out[i] = n
			}
		}
	}
	return out
}

// handlePartitionSizes serves GET /partitions/sizes.
func (ck *ClusterKit) handlePartitionSizes(c echo.Context) error {
	return c.JSON(http.StatusOK, PartitionSizes{NodeID: ck.opts.NodeID, Sizes: ck.localSizes(ck.view.Load())})
}

// sizeTimeout bounds how long a plan waits for the copy sources' sizes.
const sizeTimeout = 2 * time.Second

// gatherSizes asks each node in sources (node ID to HTTP address) for the
// sizes of the partitions it owns, in parallel; a node that does not
// answer in time contributes nothing. The result maps node ID to its
// sizes.
func (ck *ClusterKit) gatherSizes(ctx context.Context, sources map[string]string) map[string]map[int]int64 {
	ctx, cancel := context.WithTimeout(ctx, sizeTimeout)
	defer cancel()
	out := make(map[string]map[int]int64, len(sources))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id, addr := range sources {
		if id == ck.opts.NodeID {
			local := ck.localSizes(ck.view.Load())
			mu.Lock()
			out[id] = local
			mu.Unlock()
			continue
		}
		wg.Go(func() {
			var ps PartitionSizes
			if err := ck.get(ctx, addr, "/partitions/sizes", &ps); err != nil {
				ck.log.Debug("partition sizes", "member", id, "err", err)
				return
			}
			mu.Lock()
			out[id] = ps.Sizes
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}
