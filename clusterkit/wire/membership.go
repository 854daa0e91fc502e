package wire

// The bodies of the membership endpoints: POST /cluster/join, /cluster/leave,
// /cluster/drain, /cluster/formation and /partitions/ready.

// JoinRequest is the body of POST /cluster/join.
type JoinRequest struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	HTTPAddr string            `json:"http_addr"`
	RaftAddr string            `json:"raft_addr"`
	Zone     string            `json:"zone,omitempty"`
	Weight   int               `json:"weight,omitempty"`
	Meta     map[string]string `json:"meta,omitempty"`
	// The joiner's cluster settings; zero means "the cluster's".
	ClusterName       string `json:"cluster_name,omitempty"`
	PartitionCount    int    `json:"partition_count,omitempty"`
	ReplicationFactor int    `json:"replication_factor,omitempty"`
}

// JoinResponse is the answer to a successful join.
type JoinResponse struct {
	ClusterName       string `json:"cluster_name"`
	PartitionCount    int    `json:"partition_count"`
	ReplicationFactor int    `json:"replication_factor"`
	LeaderID          string `json:"leader_id"`
	// Voter is true when the node joined as a raft voter.
	Voter bool `json:"voter"`
	// AlreadyMember is true when the node was a member before the request.
	AlreadyMember bool `json:"already_member"`
}

// LeaveRequest is the body of POST /cluster/leave.
type LeaveRequest struct {
	ID string `json:"id"`
}

// DrainRequest is the body of POST /cluster/drain. Draining defaults to
// true; false cancels a drain.
type DrainRequest struct {
	ID       string `json:"id"`
	Draining *bool  `json:"draining,omitempty"`
}

// ReadyRequest is the body of POST /partitions/ready: node has copied
// partition and is ready to own it.
type ReadyRequest struct {
	Partition int    `json:"partition"`
	Node      string `json:"node"`
}

// FormationStatus is the answer of GET /cluster/formation.
type FormationStatus struct {
	ID       string `json:"id"`
	HTTPAddr string `json:"http_addr"`
	RaftAddr string `json:"raft_addr"`
	// State is waiting, founding, joining or member.
	State string `json:"state"`
	// Expect is the node's clusterkit.Options.BootstrapExpect (0: off)
	// and Nodes the number of distinct nodes of its join list, itself
	// included.
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
