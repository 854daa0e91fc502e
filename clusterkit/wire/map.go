package wire

// NodeState is a member's liveness as decided by the raft leader.
type NodeState string

// Node states.
const (
	// NodeAlive: the leader hears from the node.
	NodeAlive NodeState = "alive"
	// NodeSuspect: the leader has not heard from the node for a while.
	NodeSuspect NodeState = "suspect"
	// NodeDead: the node has been unreachable past the dead timeout.
	NodeDead NodeState = "dead"
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
	// Meta is the metadata the node started with (clusterkit.Options.Meta).
	Meta map[string]string `json:"meta,omitempty"`
	// State is the node's liveness.
	State NodeState `json:"state"`
	// Draining is true while the node is being emptied before a planned
	// shutdown: it gets no new partitions.
	Draining bool `json:"draining,omitempty"`
}

// Role is a node's role for one partition.
type Role string

// Roles.
const (
	// RoleNone: the node does not own the partition.
	RoleNone Role = "none"
	// RolePrimary: the node is the partition's primary owner.
	RolePrimary Role = "primary"
	// RoleReplica: the node is a replica owner.
	RoleReplica Role = "replica"
	// RoleJoining: the node is being added as an owner and must copy the
	// partition from the event's CopyFrom (clusterkit.PartitionEvent); it
	// becomes a replica once its handlers return nil.
	RoleJoining Role = "joining"
)

// Partition is one partition of the key space and its owners at one map
// version. Values returned by ClusterKit are shared snapshots: read them,
// never modify them.
type Partition struct {
	// ID is "partition-<Index>".
	ID string `json:"id"`
	// Index is the partition number, 0 to PartitionCount-1.
	Index int `json:"index"`
	// PrimaryNode is the primary's node ID, or "" when the partition has no
	// owner.
	PrimaryNode string `json:"primary_node"`
	// ReplicaNodes are the replicas' node IDs (owners other than the
	// primary).
	ReplicaNodes []string `json:"replica_nodes"`
	// JoiningNodes are owners being added: they are copying the partition
	// from a live owner. They should receive writes (so that the copy
	// misses nothing) but neither serve reads nor count towards a quorum
	// until they are ready and become replicas.
	JoiningNodes []string `json:"joining_nodes"`
	// Epoch increases whenever the primary changes: a service can reject
	// writes stamped with an older epoch (fencing a deposed primary).
	Epoch uint64 `json:"epoch"`
	// Version is the map version this value was read from.
	Version uint64 `json:"version"`
}

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

// KeyInfo is the body of GET /partitions/key.
type KeyInfo struct {
	Key       string    `json:"key"`
	Hash      uint64    `json:"hash"`
	Partition Partition `json:"partition"`
	Primary   *Node     `json:"primary"`
	Replicas  []Node    `json:"replicas"`
}
