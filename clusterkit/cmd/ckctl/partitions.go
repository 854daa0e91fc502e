package main

import (
	"slices"
	"strconv"

	"github.com/spf13/cobra"

	"clusterkit.dev/clusterkit/wire"
)

// partitionFilter selects partitions for ckctl partitions.
type partitionFilter struct {
	node, primary string
	moving, under bool
}

func partitionsCmd(a *app) *cobra.Command {
	var f partitionFilter
	cmd := &cobra.Command{
		Use:   "partitions",
		Short: "The partition table: primary, replicas, joining owners, epoch (filters: --node, --primary, --moving, --under-replicated)",
		Args:  args(cobra.NoArgs),
		RunE: a.withMap(func(info *wire.ClusterInfo) error {
			parts := f.apply(info)
			if a.json() {
				return writeJSON(a.out, parts)
			}
			t := newTable(a.out, "P", "PRIMARY", "REPLICAS", "JOINING", "EPOCH")
			for _, p := range parts {
				t.row(strconv.Itoa(p.Index), p.PrimaryNode, list(p.ReplicaNodes), list(p.JoiningNodes), strconv.FormatUint(p.Epoch, 10))
			}
			return t.flush()
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&f.node, "node", "", "only partitions this node owns or is joining")
	fl.StringVar(&f.primary, "primary", "", "only partitions this node is primary of")
	fl.BoolVar(&f.moving, "moving", false, "only partitions with owners joining")
	fl.BoolVar(&f.under, "under-replicated", false, "only partitions with fewer live owners than min(replication factor, live nodes)")
	return cmd
}

func (f partitionFilter) apply(info *wire.ClusterInfo) []wire.Partition {
	state := map[string]wire.NodeState{}
	live := 0
	for _, n := range info.Nodes {
		state[n.ID] = n.State
		if n.State == wire.NodeAlive {
			live++
		}
	}
	want := min(info.ReplicationFactor, live)
	out := []wire.Partition{}
	for _, p := range info.Partitions {
		owners := append([]string{p.PrimaryNode}, p.ReplicaNodes...)
		switch {
		case f.node != "" && !slices.Contains(owners, f.node) && !slices.Contains(p.JoiningNodes, f.node):
			continue
		case f.primary != "" && p.PrimaryNode != f.primary:
			continue
		case f.moving && len(p.JoiningNodes) == 0:
			continue
		}
		if f.under {
			n := 0
			for _, id := range owners {
				if state[id] == wire.NodeAlive {
					n++
				}
			}
			if n >= want {
				continue
			}
		}
		out = append(out, p)
	}
	return out
}
