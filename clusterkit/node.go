package clusterkit

import "clusterkit.dev/clusterkit/internal/state"

// nodeFromState returns the API value of a member.
func nodeFromState(n *state.Node) Node {
	return Node{
		ID:       n.ID,
		Name:     n.Name,
		IP:       n.HTTPAddr,
		RaftAddr: n.RaftAddr,
		Zone:     n.Zone,
		Weight:   n.Weight,
		Meta:     n.Meta,
		State:    NodeState(n.Status),
		Draining: n.Draining,
	}
}
