package server

import (
	"net/http"

	"clusterkit.dev/clusterkit"
)

// ReplicationStatus is the body of GET /kv/replication: how far behind
// this node's replicas are, for the partitions this node is primary of.
type ReplicationStatus struct {
	Node       string `json:"node"`
	MapVersion uint64 `json:"map_version"`
	// Operations is the records not yet acknowledged, over every peer.
	Operations int `json:"operations"`
	// Seconds is the age of the oldest of them.
	Seconds float64   `json:"seconds"`
	Peers   []PeerLag `json:"peers"`
}

func (s *Server) handleReplicationStatus(w http.ResponseWriter, _ *http.Request, _ *clusterkit.Role) error {
	st := s.ReplicationStatus()
	writeJSON(w, http.StatusOK, st)
	return nil
}

// ReplicationStatus computes the replication lag of this node's primaries.
func (s *Server) ReplicationStatus() ReplicationStatus {
	st := ReplicationStatus{Node: s.self, MapVersion: s.ck.Version(), Peers: s.repl.lag()}
	for _, p := range st.Peers {
		st.Operations += p.Operations
		st.Seconds = max(st.Seconds, p.Seconds)
	}
	return st
}
