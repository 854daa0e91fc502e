package clusterkit

// The JSON bodies of the HTTP API. Field names are stable: clients in other
// languages depend on them.

// ClusterInfo is the body of GET /cluster: the whole map at one version.
type ClusterInfo struct {
	ClusterName       string      `json:"cluster_name"`
	Version           uint64      `json:"version"`
	LeaderID          string      `json:"leader_id"`
	PartitionCount    int         `json:"partition_count"`
	ReplicationFactor int         `json:"replication_factor"`
	Nodes             []Node      `json:"nodes"`
	Partitions        []Partition `json:"partitions"`
}

// PartitionList is the body of GET /partitions.
type PartitionList struct {
	Version           uint64      `json:"version"`
	PartitionCount    int         `json:"partition_count"`
	ReplicationFactor int         `json:"replication_factor"`
	Offset            int         `json:"offset"`
	Partitions        []Partition `json:"partitions"`
}

// PartitionStats is the body of GET /partitions/stats.
type PartitionStats struct {
	Version           uint64      `json:"version"`
	PartitionCount    int         `json:"partition_count"`
	ReplicationFactor int         `json:"replication_factor"`
	Nodes             []NodeLoad  `json:"nodes"`
	Primaries         LoadSummary `json:"primaries"`
	Slots             LoadSummary `json:"slots"`
	// Unowned counts partitions without a primary; UnderReplicated those
	// with fewer than min(ReplicationFactor, nodes) owners.
	Unowned         int `json:"unowned"`
	UnderReplicated int `json:"under_replicated"`
}

// NodeLoad is one node's share of the partitions.
type NodeLoad struct {
	ID        string `json:"id"`
	Primaries int    `json:"primaries"`
	Replicas  int    `json:"replicas"`
}

// LoadSummary summarises a per-node count.
type LoadSummary struct {
	Min  int     `json:"min"`
	Max  int     `json:"max"`
	Mean float64 `json:"mean"`
}

// KeyInfo is the body of GET /partitions/key.
type KeyInfo struct {
	Key       string    `json:"key"`
	Hash      uint64    `json:"hash"`
	Partition Partition `json:"partition"`
	Primary   *Node     `json:"primary"`
	Replicas  []Node    `json:"replicas"`
}

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
	RaftState          string         `json:"raft_state,omitempty"`
	Voter              *bool          `json:"voter,omitempty"`
	Term               uint64         `json:"term,omitempty"`
	LastContactSeconds *float64       `json:"last_contact_seconds,omitempty"`
	PrimaryPartitions  *int           `json:"primary_partitions,omitempty"`
	ReplicaPartitions  *int           `json:"replica_partitions,omitempty"`
	Nodes              map[string]int `json:"nodes,omitempty"`
}
