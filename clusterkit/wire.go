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
	// with fewer live ready owners than min(ReplicationFactor, live nodes).
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
	RaftState          string   `json:"raft_state,omitempty"`
	Voter              *bool    `json:"voter,omitempty"`
	Term               uint64   `json:"term,omitempty"`
	LastContactSeconds *float64 `json:"last_contact_seconds,omitempty"`
	// MapCurrent is true while this node's map is known to be current:
	// it heard from the leader within half DeadTimeout, and its map caught
	// up with the leader's after any longer gap (see LeaderContact).
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

// Routing protocol shared by the client SDK and services built on
// ClusterKit. A service that receives a request for a partition it does not
// own (or that its map says belongs elsewhere) answers StatusNotOwner with a
// NotOwnerBody, and sets HeaderMapVersion on every answer; a client whose map
// is older refreshes it and retries once.
const (
	// HeaderMapVersion carries the sender's map version (decimal).
	HeaderMapVersion = "X-Clusterkit-Map-Version"
	// HeaderEpoch carries a partition epoch (decimal), for fencing.
	HeaderEpoch = "X-Clusterkit-Epoch"
	// StatusNotOwner is the status of a request sent to a node that does
	// not own the key's partition in the role the request needs.
	StatusNotOwner = 421 // http.StatusMisdirectedRequest
)

// NotOwnerBody is the JSON body of a StatusNotOwner answer.
type NotOwnerBody struct {
	Error string `json:"error"`
	// MapVersion is the answering node's map version.
	MapVersion uint64 `json:"map_version"`
	// Partition is the key's partition number.
	Partition int `json:"partition"`
	// Primary is the node the answering node believes is primary, if any.
	Primary string `json:"primary,omitempty"`
}

// FormationStatus is the answer of GET /cluster/formation.
type FormationStatus struct {
	ID       string `json:"id"`
	HTTPAddr string `json:"http_addr"`
	RaftAddr string `json:"raft_addr"`
	// State is waiting, founding, joining or member.
	State string `json:"state"`
	// Expect is the node's BootstrapExpect (0: off) and Nodes the number
	// of distinct nodes of its join list, itself included.
	Expect int `json:"expect"`
	Nodes  int `json:"nodes"`
	// Seen lists the waiting nodes of the node's last probe, itself
	// included, while it waits.
	Seen []string `json:"seen,omitempty"`
	// PromisedTo is the founder the node has promised to wait for.
	PromisedTo string `json:"promised_to,omitempty"`
}

// PromiseRequest is the body of POST /cluster/formation: a founder asks a
// waiting node to promise to wait for it, or (Release) gives the promise
// back because it will not found with it.
type PromiseRequest struct {
	ID       string `json:"id"`
	HTTPAddr string `json:"http_addr"`
	Expect   int    `json:"expect"`
	Release  bool   `json:"release,omitempty"`
}

// PromiseResponse answers a PromiseRequest with the node's status; Reason
// says why a promise was not granted.
type PromiseResponse struct {
	Granted bool   `json:"granted"`
	Reason  string `json:"reason,omitempty"`
	// Join describes the node, with a granted promise, as it would ask to
	// join: the founder adds it before the cluster's first table.
	Join *JoinRequest `json:"join,omitempty"`
	FormationStatus
}
