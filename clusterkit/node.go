package clusterkit

import "clusterkit.dev/clusterkit/internal/state"

// NodeState is a member's liveness as decided by the raft leader.
type NodeState string

// Node states.
const (
	// NodeAlive: the leader hears from the node.
	NodeAlive NodeState = NodeState(state.StatusAlive)
	// NodeSuspect: the leader has not heard from the node for a while.
	NodeSuspect NodeState = NodeState(state.StatusSuspect)
	// NodeDead: the node has been unreachable past the dead timeout.
	NodeDead NodeState = NodeState(state.StatusDead)
)

// Node is a member of the cluster. Values returned by ClusterKit are shared
// snapshots: read them, never modify them.
type Node struct {
	// ID is the node's unique, permanent identifier.
	ID string `json:"id"`
	// Name is the node's human-readable name.
	Name string `json:"name"`
	// IP is the node's dialable HTTP address, host:port (the name follows
	// the reference API; it holds HTTPAdvertise, never a bare ":port").
	IP string `json:"ip"`
	// RaftAddr is the node's dialable raft address, host:port.
	RaftAddr string `json:"raft_addr"`
	// Zone is the node's failure domain, if any.
	Zone string `json:"zone,omitempty"`
	// Weight scales the node's share of partitions.
	Weight int `json:"weight"`
	// Meta is the metadata the node started with (Options.Meta).
	Meta map[string]string `json:"meta,omitempty"`
	// State is the node's liveness.
	State NodeState `json:"state"`
	// Draining is true while the node is being emptied before a planned
	// shutdown: it gets no new partitions.
	Draining bool `json:"draining,omitempty"`
}

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
