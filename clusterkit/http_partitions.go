package clusterkit

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
)

// maxKeyBytes caps the key accepted by GET /partitions/key.
const maxKeyBytes = 1024

// handlePartitions serves GET /partitions[?offset=&limit=]: the partitions
// of the current map, in index order.
func (ck *ClusterKit) handlePartitions(c echo.Context) error {
	v := ck.view.Load()
	if !v.hasMap() {
		return ErrNoPartitionMap
	}
	n := len(v.partitions)
	offset, err := intParam(c, "offset", 0, 0, n)
	if err != nil {
		return err
	}
	limit, err := intParam(c, "limit", n, 1, n)
	if err != nil {
		return err
	}
	end := min(offset+limit, n)
	return c.JSON(http.StatusOK, PartitionList{
		Version: v.version, PartitionCount: v.partitionCount, ReplicationFactor: v.replicationFactor,
		Offset: offset, Partitions: v.partitions[offset:end],
	})
}

// handlePartitionStats serves GET /partitions/stats: how evenly the
// partitions are spread.
func (ck *ClusterKit) handlePartitionStats(c echo.Context) error {
	v := ck.view.Load()
	if !v.hasMap() {
		return ErrNoPartitionMap
	}
	return c.JSON(http.StatusOK, v.stats())
}

// handlePartitionKey serves GET /partitions/key?key=.
func (ck *ClusterKit) handlePartitionKey(c echo.Context) error {
	key := c.QueryParam("key")
	if key == "" {
		return badRequest("key", "required and non-empty")
	}
	if len(key) > maxKeyBytes {
		return badRequest("key", fmt.Sprintf("%d bytes, at most %d", len(key), maxKeyBytes))
	}
	p, err := ck.GetPartition(key)
	if err != nil {
		return err
	}
	replicas := ck.GetReplicas(p)
	if replicas == nil {
		replicas = []Node{}
	}
	return c.JSON(http.StatusOK, KeyInfo{Key: key, Hash: KeyHash(key), Partition: *p,
		Primary: ck.GetPrimary(p), Replicas: replicas})
}

// handleReady serves POST /partitions/ready, forwarded to the leader.
func (ck *ClusterKit) handleReady(c echo.Context) error {
	var req ReadyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Node == "" {
		return badRequest("node", "required")
	}
	if !ck.IsLeader() {
		if err := ck.forward(c, "/partitions/ready", req, nil); err != nil {
			return err
		}
	} else if err := ck.completeHandoff(c.Request().Context(), req); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

func (v *view) stats() PartitionStats {
	s := PartitionStats{Version: v.version, PartitionCount: v.partitionCount,
		ReplicationFactor: v.replicationFactor}
	load := make(map[string]*NodeLoad, len(v.nodeList))
	s.Nodes = make([]NodeLoad, len(v.nodeList))
	for i, n := range v.nodeList {
		s.Nodes[i].ID = n.ID
		load[n.ID] = &s.Nodes[i]
	}
	for i := range v.partitions {
		p := &v.partitions[i]
		if p.PrimaryNode == "" {
			s.Unowned++
		} else {
			load[p.PrimaryNode].Primaries++
		}
		for _, r := range p.ReplicaNodes {
			load[r].Replicas++
		}
	}
	s.UnderReplicated = v.health().underReplicated
	prim := make([]int, len(s.Nodes))
	slots := make([]int, len(s.Nodes))
	for i, n := range s.Nodes {
		prim[i] = n.Primaries
		slots[i] = n.Primaries + n.Replicas
	}
	s.Primaries = summarize(prim)
	s.Slots = summarize(slots)
	return s
}

func summarize(xs []int) LoadSummary {
	if len(xs) == 0 {
		return LoadSummary{}
	}
	s := LoadSummary{Min: xs[0], Max: xs[0]}
	total := 0
	for _, x := range xs {
		s.Min = min(s.Min, x)
		s.Max = max(s.Max, x)
		total += x
	}
	s.Mean = float64(total) / float64(len(xs))
	return s
}
