package wire

// LeaderInfo is the body of GET /consensus/leader.
type LeaderInfo struct {
	LeaderID       string `json:"leader_id"`
	LeaderRaftAddr string `json:"leader_raft_addr"`
	LeaderHTTPAddr string `json:"leader_http_addr"`
	Term           uint64 `json:"term"`
	IsSelf         bool   `json:"is_self"`
}

// ConsensusStats is the body of GET /consensus/stats.
type ConsensusStats struct {
	State              string            `json:"state"`
	Term               uint64            `json:"term"`
	CommitIndex        uint64            `json:"commit_index"`
	AppliedIndex       uint64            `json:"applied_index"`
	LastContactSeconds float64           `json:"last_contact_seconds"`
	Voters             []string          `json:"voters"`
	NonVoters          []string          `json:"nonvoters"`
	Raft               map[string]string `json:"raft"`
}

// Health is the body of GET /health and GET /health/detailed. Status is
// "ok" (HTTP 200) or "unavailable" (HTTP 503, with Reason).
type Health struct {
	Status   string `json:"status"`
	Reason   string `json:"reason,omitempty"`
	NodeID   string `json:"node_id"`
	LeaderID string `json:"leader_id,omitempty"`
	Version  uint64 `json:"version"`

	// Detailed only.
	RaftState          string   `json:"raft_state,omitempty"`
	Voter              *bool    `json:"voter,omitempty"`
	Term               uint64   `json:"term,omitempty"`
	LastContactSeconds *float64 `json:"last_contact_seconds,omitempty"`
	// MapCurrent is true while this node's map is known to be current:
	// it heard from the leader within half the cluster's DeadTimeout, and
	// its map caught up with the leader's after any longer gap (see
	// clusterkit.ClusterKit.LeaderContact).
	MapCurrent        *bool          `json:"map_current,omitempty"`
	PrimaryPartitions *int           `json:"primary_partitions,omitempty"`
	ReplicaPartitions *int           `json:"replica_partitions,omitempty"`
	Nodes             map[string]int `json:"nodes,omitempty"`
	// Draining is true while this node is being drained; SafeToStop is
	// true when stopping it now leaves no partition under-replicated.
	Draining   *bool `json:"draining,omitempty"`
	SafeToStop *bool `json:"safe_to_stop,omitempty"`
	// UnderReplicated and NoLivePrimary count partitions of the map that
	// lack live owners or a live primary; MovesInFlight counts handoffs.
	UnderReplicated *int `json:"under_replicated,omitempty"`
	NoLivePrimary   *int `json:"no_live_primary,omitempty"`
	MovesInFlight   *int `json:"moves_in_flight,omitempty"`
}
