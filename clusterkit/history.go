package clusterkit

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	"clusterkit.dev/clusterkit/internal/state"
)

// MaxPartitionHistory is how many owner changes the replicated state keeps
// per partition: its last MaxPartitionHistory, oldest first.
const MaxPartitionHistory = state.MaxHistory

// maxNodeHistory caps the changes GET /partitions/history?node= returns.
const maxNodeHistory = 10000

// PartitionHistory returns the last owner changes of partition (at most
// MaxPartitionHistory, oldest first) from the replicated state, the same on
// every node and across restarts. It returns nil for a partition out of
// range.
func (ck *ClusterKit) PartitionHistory(partition int) []PartitionChange {
	var out []PartitionChange
	ck.fsm.read(func(st *state.State) {
		if partition < 0 || partition >= len(st.Partitions) {
			return
		}
		for _, c := range st.Partitions[partition].History {
			out = append(out, changeFromState(partition, c))
		}
	})
	return out
}

// NodeHistory returns the recorded changes in which node gained or lost a
// partition or its primary role, in version order (then partition), the
// newest limit of them.
func (ck *ClusterKit) NodeHistory(node string, limit int) []PartitionChange {
	var out []PartitionChange
	ck.fsm.read(func(st *state.State) {
		for i, p := range st.Partitions {
			for _, c := range p.History {
				if involves(c, node) {
					out = append(out, changeFromState(i, c))
				}
			}
		}
	})
	slices.SortFunc(out, func(a, b PartitionChange) int {
		if a.Version != b.Version {
			return int(a.Version) - int(b.Version)
		}
		return a.Partition - b.Partition
	})
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out
}

// involves reports whether c changed node's role.
func involves(c state.Change, node string) bool {
	return slices.Contains(c.Added, node) || slices.Contains(c.Removed, node) ||
		c.PrevPrimary == node || (c.PrevPrimary != "" && len(c.Owners) > 0 && c.Owners[0] == node)
}

func changeFromState(partition int, c state.Change) PartitionChange {
	return PartitionChange{Partition: partition, Version: c.Version, At: c.At, Epoch: c.Epoch,
		Reason: c.Reason, Owners: nonNil(c.Owners), Added: c.Added, Removed: c.Removed,
		PrevPrimary: c.PrevPrimary, From: c.From, Rule: c.Rule}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

// handlePartitionHistory serves GET /partitions/history?partition=N or
// ?node=ID[&limit=N], from this node's replicated state.
func (ck *ClusterKit) handlePartitionHistory(c echo.Context) error {
	v := ck.view.Load()
	if v == nil || v.partitionCount == 0 {
		return ErrNoPartitionMap
	}
	node := c.QueryParam("node")
	has := c.QueryParam("partition") != ""
	if has == (node != "") {
		return badRequest("partition", "give exactly one of partition and node")
	}
	h := PartitionHistory{Version: v.version, MaxPerPartition: MaxPartitionHistory}
	if has {
		p, err := intParam(c, "partition", 0, 0, v.partitionCount-1)
		if err != nil {
			return err
		}
		h.Partition = &p
		h.Changes = ck.PartitionHistory(p)
	} else {
		if !validID(node) {
			return badRequest("node", fmt.Sprintf("%q is not a node ID", node))
		}
		limit, err := intParam(c, "limit", 100, 1, maxNodeHistory)
		if err != nil {
			return err
		}
		h.Node = node
		h.Changes = ck.NodeHistory(node, limit)
	}
	if h.Changes == nil {
		h.Changes = []PartitionChange{}
	}
	return c.JSON(http.StatusOK, h)
}
