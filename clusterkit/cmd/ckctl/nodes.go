package main

import (
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"clusterkit.dev/clusterkit/wire"
)

// nodeRow is one line of ckctl nodes, and its -o json element.
type nodeRow struct {
	wire.Node
	Leader    bool `json:"leader"`
	Primaries int  `json:"primaries"`
	Replicas  int  `json:"replicas"`
	Joining   int  `json:"joining"`
}

func nodesCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "nodes",
		Short: "Every node: state, zone, weight, role counts, address",
		Args:  args(cobra.NoArgs),
		RunE: a.withMap(func(info *wire.ClusterInfo) error {
			rows := nodeRows(info)
			if a.json() {
				return writeJSON(a.out, rows)
			}
			t := newTable(a.out, "ID", "STATE", "ZONE", "WEIGHT", "PRIMARIES", "REPLICAS", "JOINING", "FLAGS", "ADDR")
			for _, r := range rows {
				t.row(r.ID, string(r.State), r.Zone, strconv.Itoa(r.Weight), strconv.Itoa(r.Primaries),
					strconv.Itoa(r.Replicas), strconv.Itoa(r.Joining), r.flags(), r.IP)
			}
			return t.flush()
		}),
	}
}

// nodeRows counts each node's roles in info's map, in node ID order.
func nodeRows(info *wire.ClusterInfo) []nodeRow {
	rows := make([]nodeRow, len(info.Nodes))
	at := map[string]*nodeRow{}
	for i, n := range info.Nodes {
		rows[i] = nodeRow{Node: n, Leader: n.ID == info.LeaderID}
		at[n.ID] = &rows[i]
	}
	for _, p := range info.Partitions {
		if r := at[p.PrimaryNode]; r != nil {
			r.Primaries++
		}
		for _, id := range p.ReplicaNodes {
			if r := at[id]; r != nil {
				r.Replicas++
			}
		}
		for _, id := range p.JoiningNodes {
			if r := at[id]; r != nil {
				r.Joining++
			}
		}
	}
	return rows
}

// flags lists what is special about the node: leader, draining.
func (r nodeRow) flags() string {
	var f []string
	if r.Leader {
		f = append(f, "leader")
	}
	if r.Draining {
		f = append(f, "draining")
	}
	return strings.Join(f, ",")
}
