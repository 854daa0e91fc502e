package wire

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
