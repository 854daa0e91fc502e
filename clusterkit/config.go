package clusterkit

import (
	"fmt"
	"time"

	"clusterkit.dev/clusterkit/internal/state"
)

// Config holds the cluster settings and the node's timeouts.
//
// ClusterName, PartitionCount and ReplicationFactor are properties of the
// cluster: the node that bootstraps a cluster writes them into the
// replicated state, and every node routes by the replicated values, never by
// its own. A joining node that leaves them zero adopts the cluster's values;
// one that sets a value different from the cluster's is refused, with an
// error that names the setting, so a misconfigured node never misroutes.
//
// The timeouts are per node and may differ between nodes. DefaultConfig
// suits machines on a LAN; LocalConfig has fast timeouts for tests and
// single-host clusters. A zero field takes DefaultConfig's value.
type Config struct {
	// ClusterName identifies the cluster. Default "clusterkit-cluster".
	ClusterName string
	// PartitionCount is the number of partitions, fixed for the life of the
	// cluster. 0: the cluster's value when joining, 16 when bootstrapping.
	PartitionCount int
	// ReplicationFactor is the number of owners (primary + replicas) of each
	// partition. 0: the cluster's value when joining, 3 when bootstrapping.
	// A cluster with fewer nodes gives each partition as many owners as it
	// has nodes.
	ReplicationFactor int
	// MaxVoters caps the raft voters (odd, 1 to 9; default 5). Further nodes
	// join as non-voters: they receive every committed change but do not
	// vote. More voters survive more failures but slow every commit.
	MaxVoters int

	// HeartbeatTimeout is raft's follower timeout before it starts an
	// election; ElectionTimeout is a candidate's. Lower means faster leader
	// failover and more spurious elections on a loaded machine. Default 1s.
	HeartbeatTimeout time.Duration
	ElectionTimeout  time.Duration
	// LeaderLeaseTimeout is how long a leader stays leader without reaching
	// a quorum. Must not exceed HeartbeatTimeout. Default 500ms.
	LeaderLeaseTimeout time.Duration

	// SuspectTimeout is how long the leader goes without hearing from a
	// node before it marks it suspect (visible, but nothing moves). Lower
	// notices failures sooner and flags slow nodes more often. Default 1.5s.
	SuspectTimeout time.Duration
	// DeadTimeout is how long the leader goes without hearing from a node
	// before it declares it dead and promotes replicas to primary for
	// every partition the node led. Lower means faster failover and more
	// needless failovers of nodes that are only slow (a long GC pause, a
	// loaded machine). Must be at least SuspectTimeout. Default 3s.
	DeadTimeout time.Duration
	// ReReplicationDelay is how long a dead node keeps its replica slots:
	// a node that returns within it gets its partitions back without any
	// copy. After it, the slots move to other nodes (copying from a live
	// owner) and the node is removed from the cluster; it may join again.
	// It is also how long a returned node waits before it is made primary
	// again, so that the application can catch it up. Longer saves copies
	// across restarts; shorter restores the replication factor sooner.
	// Default 30s.
	ReReplicationDelay time.Duration
	// HandoffTimeout bounds one make-before-break move: a joining owner
	// that has not reported ready by then is dropped (logged, counted) and
	// the move is planned again. Set it above the time the application
	// needs to copy its largest partition. Default 5m.
	HandoffTimeout time.Duration
	// MaxConcurrentMoves caps the partitions in handoff at once across the
	// cluster. Moves that restore lost replicas go before balancing moves.
	// Higher rebalances faster and copies more at once. Default 8.
	MaxConcurrentMoves int

	// ApplyTimeout bounds one raft commit proposed by this node. Default 5s.
	ApplyTimeout time.Duration
	// JoinRetryInterval is the pause between join attempts while no member
	// of the join list accepts. Default 500ms.
	JoinRetryInterval time.Duration
	// JoinTimeout bounds how long Start keeps asking the join list before it
	// gives up. Default 60s.
	JoinTimeout time.Duration
}

// DefaultConfig returns production timeouts for nodes on one LAN.
func DefaultConfig() Config {
	return Config{
		ClusterName:        "clusterkit-cluster",
		MaxVoters:          5,
		HeartbeatTimeout:   1000 * time.Millisecond,
		ElectionTimeout:    1000 * time.Millisecond,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		SuspectTimeout:     1500 * time.Millisecond,
		DeadTimeout:        3 * time.Second,
		ReReplicationDelay: 30 * time.Second,
		HandoffTimeout:     5 * time.Minute,
		MaxConcurrentMoves: 8,
		ApplyTimeout:       5 * time.Second,
		JoinRetryInterval:  500 * time.Millisecond,
		JoinTimeout:        60 * time.Second,
	}
}

// LocalConfig returns fast timeouts for tests and clusters on one host,
// where round trips are sub-millisecond. On a heavily loaded machine these
// may cause spurious leader elections.
func LocalConfig() Config {
	c := DefaultConfig()
	c.HeartbeatTimeout = 300 * time.Millisecond
	c.ElectionTimeout = 300 * time.Millisecond
	c.LeaderLeaseTimeout = 150 * time.Millisecond
	c.SuspectTimeout = 400 * time.Millisecond
	c.DeadTimeout = 800 * time.Millisecond
	c.ReReplicationDelay = 3 * time.Second
	c.HandoffTimeout = 30 * time.Second
	c.MaxConcurrentMoves = 32
	c.JoinRetryInterval = 100 * time.Millisecond
	return c
}

const (
	defaultPartitionCount    = 16
	defaultReplicationFactor = 3
	maxPartitionCount        = state.MaxPartitionCount
	maxReplicationFactor     = state.MaxReplicationFactor
)

func (c *Config) fillDefaults() {
	d := DefaultConfig()
	if c.ClusterName == "" {
		c.ClusterName = d.ClusterName
	}
	if c.MaxVoters == 0 {
		c.MaxVoters = d.MaxVoters
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = d.HeartbeatTimeout
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = d.ElectionTimeout
	}
	if c.LeaderLeaseTimeout == 0 {
		c.LeaderLeaseTimeout = min(d.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if c.SuspectTimeout == 0 {
		c.SuspectTimeout = d.SuspectTimeout
	}
	if c.DeadTimeout == 0 {
		c.DeadTimeout = max(d.DeadTimeout, c.SuspectTimeout)
	}
	if c.ReReplicationDelay == 0 {
		c.ReReplicationDelay = d.ReReplicationDelay
	}
	if c.HandoffTimeout == 0 {
		c.HandoffTimeout = d.HandoffTimeout
	}
	if c.MaxConcurrentMoves == 0 {
		c.MaxConcurrentMoves = d.MaxConcurrentMoves
	}
	if c.ApplyTimeout == 0 {
		c.ApplyTimeout = d.ApplyTimeout
	}
	if c.JoinRetryInterval == 0 {
		c.JoinRetryInterval = d.JoinRetryInterval
	}
	if c.JoinTimeout == 0 {
		c.JoinTimeout = d.JoinTimeout
	}
}

// Validate checks the fields and their relations; the error names the field.
// Zero values are valid where a default applies.
func (c Config) Validate() error {
	if c.PartitionCount < 0 || c.PartitionCount > maxPartitionCount {
		return &FieldError{Field: "PartitionCount", Reason: fmt.Sprintf("%d is outside 1..%d", c.PartitionCount, maxPartitionCount)}
	}
	if c.ReplicationFactor < 0 || c.ReplicationFactor > maxReplicationFactor {
		return &FieldError{Field: "ReplicationFactor", Reason: fmt.Sprintf("%d is outside 1..%d", c.ReplicationFactor, maxReplicationFactor)}
	}
	if c.MaxVoters < 0 || c.MaxVoters > 9 || (c.MaxVoters != 0 && c.MaxVoters%2 == 0) {
		return &FieldError{Field: "MaxVoters", Reason: fmt.Sprintf("%d must be odd, 1 to 9", c.MaxVoters)}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"HeartbeatTimeout", c.HeartbeatTimeout},
		{"ElectionTimeout", c.ElectionTimeout},
		{"LeaderLeaseTimeout", c.LeaderLeaseTimeout},
		{"SuspectTimeout", c.SuspectTimeout},
		{"DeadTimeout", c.DeadTimeout},
		{"ReReplicationDelay", c.ReReplicationDelay},
		{"HandoffTimeout", c.HandoffTimeout},
		{"ApplyTimeout", c.ApplyTimeout},
		{"JoinRetryInterval", c.JoinRetryInterval},
		{"JoinTimeout", c.JoinTimeout},
	} {
		if d.v < 0 || (d.v > 0 && d.v < 5*time.Millisecond) {
			return &FieldError{Field: d.name, Reason: fmt.Sprintf("%v must be at least 5ms", d.v)}
		}
	}
	if c.MaxConcurrentMoves < 0 {
		return &FieldError{Field: "MaxConcurrentMoves", Reason: fmt.Sprintf("%d is negative", c.MaxConcurrentMoves)}
	}
	if c.SuspectTimeout > 0 && c.DeadTimeout > 0 && c.DeadTimeout < c.SuspectTimeout {
		return &FieldError{Field: "DeadTimeout", Reason: fmt.Sprintf("%v must be at least SuspectTimeout %v", c.DeadTimeout, c.SuspectTimeout)}
	}
	if c.LeaderLeaseTimeout > 0 && c.HeartbeatTimeout > 0 && c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		return &FieldError{Field: "LeaderLeaseTimeout", Reason: fmt.Sprintf("%v must not exceed HeartbeatTimeout %v", c.LeaderLeaseTimeout, c.HeartbeatTimeout)}
	}
	return nil
}
