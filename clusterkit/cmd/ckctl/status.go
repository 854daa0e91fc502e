package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"clusterkit.dev/clusterkit/client"
	"clusterkit.dev/clusterkit/wire"
)

// statusInfo is the -o json body of ckctl status.
type statusInfo struct {
	ClusterName       string           `json:"cluster_name"`
	LeaderID          string           `json:"leader_id"`
	Term              uint64           `json:"term"`
	Version           uint64           `json:"version"`
	PartitionCount    int              `json:"partition_count"`
	ReplicationFactor int              `json:"replication_factor"`
	Nodes             map[string]int   `json:"nodes"`
	Draining          int              `json:"draining"`
	UnderReplicated   int              `json:"under_replicated"`
	NoLivePrimary     int              `json:"no_live_primary"`
	MovesInFlight     int              `json:"moves_in_flight"`
	Slots             wire.LoadSummary `json:"slots"`
	Primaries         wire.LoadSummary `json:"primaries"`
	// Healthy is true when a leader is known, every node is alive and
	// every partition has its live owners and a live primary.
	Healthy bool `json:"healthy"`
	// Problems says what is not healthy.
	Problems []string `json:"problems"`
}

func statusCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Leader, term, nodes by state, map version, health, under-replicated partitions, moves in flight",
		Long: `status summarises the cluster as the node at --addr sees it. It exits with
status 5 when the cluster is not healthy: no leader, a node not alive, a
partition under-replicated or without a live primary.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := a.ctx(cmd.Context())
			defer cancel()
			s, err := fetchStatus(ctx, a.admin())
			if err != nil {
				return err
			}
			if a.json() {
				err = writeJSON(a.out, s)
			} else {
				err = printStatus(a.out, s)
			}
			if err == nil && !s.Healthy {
				return &exitErr{code: exitUnhealthy, err: fmt.Errorf("cluster not healthy: %s", strings.Join(s.Problems, "; "))}
			}
			return err
		},
	}
}

func fetchStatus(ctx context.Context, ad *client.Admin) (*statusInfo, error) {
	info, err := ad.Cluster(ctx)
	if err != nil {
		return nil, err
	}
	h, err := ad.Health(ctx)
	if err != nil && h == nil {
		return nil, err
	}
	stats, err := ad.Stats(ctx)
	if err != nil && client.StatusCode(err) != 503 {
		return nil, err
	}
	s := &statusInfo{ClusterName: info.ClusterName, LeaderID: info.LeaderID, Term: h.Term, Version: info.Version,
		PartitionCount: info.PartitionCount, ReplicationFactor: info.ReplicationFactor,
		Nodes: map[string]int{"alive": 0, "suspect": 0, "dead": 0}, Problems: []string{}}
	for _, n := range info.Nodes {
		s.Nodes[string(n.State)]++
		if n.Draining {
			s.Draining++
		}
		if n.State != wire.NodeAlive {
			s.Problems = append(s.Problems, fmt.Sprintf("%s is %s", n.ID, n.State))
		}
	}
	if h.UnderReplicated != nil {
		s.UnderReplicated, s.NoLivePrimary, s.MovesInFlight = *h.UnderReplicated, *h.NoLivePrimary, *h.MovesInFlight
	}
	if stats != nil {
		s.Slots, s.Primaries = stats.Slots, stats.Primaries
	}
	if s.LeaderID == "" {
		s.Problems = append(s.Problems, "no leader")
	}
	if s.UnderReplicated > 0 {
		s.Problems = append(s.Problems, fmt.Sprintf("%d partitions under-replicated", s.UnderReplicated))
	}
	if s.NoLivePrimary > 0 {
		s.Problems = append(s.Problems, fmt.Sprintf("%d partitions without a live primary", s.NoLivePrimary))
	}
	if h.Status != "ok" {
		s.Problems = append(s.Problems, "node "+h.NodeID+": "+h.Reason)
	}
	s.Healthy = len(s.Problems) == 0
	return s, nil
}

func printStatus(w io.Writer, s *statusInfo) error {
	health := "ok"
	if !s.Healthy {
		health = "NOT HEALTHY: " + strings.Join(s.Problems, "; ")
	}
	t := newTable(w)
	t.row("cluster", s.ClusterName)
	t.row("leader", fmt.Sprintf("%s (term %d)", orDash(s.LeaderID), s.Term))
	t.row("map", fmt.Sprintf("version %d, %d partitions, replication factor %d", s.Version, s.PartitionCount, s.ReplicationFactor))
	t.row("nodes", fmt.Sprintf("%d alive, %d suspect, %d dead, %d draining", s.Nodes["alive"], s.Nodes["suspect"], s.Nodes["dead"], s.Draining))
	t.row("partitions", fmt.Sprintf("%d under-replicated, %d without a live primary, %d moves in flight", s.UnderReplicated, s.NoLivePrimary, s.MovesInFlight))
	t.row("balance", fmt.Sprintf("slots %d..%d per node, primaries %d..%d", s.Slots.Min, s.Slots.Max, s.Primaries.Min, s.Primaries.Max))
	t.row("health", health)
	return t.flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
