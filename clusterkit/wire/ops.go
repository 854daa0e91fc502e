package wire

import "clusterkit.dev/clusterkit/placement"

// The JSON bodies of the operator endpoints: GET /cluster/plan,
// /partitions/history, /partitions/explain and /partitions/sizes.

// PlanInfo is the body of GET /cluster/plan: what the leader would do for
// a change. The leader runs its own controller, placement included, on a
// copy of the cluster state with the change applied, as if the copies of
// each round of handoffs finished together, and commits nothing. A change
// of more than one round may, once made, send some later-round copies to
// other nodes of the same balance (see clusterkit's DESIGN.md).
type PlanInfo struct {
	// Version is the map version the plan starts from and LeaderID the
	// node that computed it.
	Version  uint64     `json:"version"`
	LeaderID string     `json:"leader_id"`
	Change   PlanChange `json:"change"`
	// MovesInFlight counts the handoffs already running; the plan
	// completes them first.
	MovesInFlight int `json:"moves_in_flight"`
	// Steps counts the rounds of handoffs the leader needs: each begins
	// at most MaxConcurrentMoves of them.
	Steps int `json:"steps"`
	// Moves lists every change of ownership the plan makes, by partition,
	// in the order the leader makes them within a partition.
	Moves []PlanMove `json:"moves"`
	// Copies counts the moves that copy a partition to a new owner,
	// PrimaryChanges the partitions whose primary changes.
	Copies         int `json:"copies"`
	PrimaryChanges int `json:"primary_changes"`
	// Before and After describe the balance of the current table and of
	// the one the plan reaches.
	Before Balance `json:"before"`
	After  Balance `json:"after"`
	// BytesToCopy sums the sizes of the copied partitions that the
	// application reported (see clusterkit.ClusterKit.SetPartitionSizes);
	// BytesKnown counts the copies whose size is known, out of Copies.
	BytesToCopy int64 `json:"bytes_to_copy"`
	BytesKnown  int   `json:"bytes_known"`
}

// PlanChange is the change a plan simulates.
type PlanChange struct {
	// Join are new nodes, all in Zone with Weight.
	Join   []string `json:"join,omitempty"`
	Zone   string   `json:"zone,omitempty"`
	Weight int      `json:"weight,omitempty"`
	// Leave and Drain are members that leave or are drained: either way
	// placement stops giving them partitions.
	Leave []string `json:"leave,omitempty"`
	Drain []string `json:"drain,omitempty"`
}

// Move kinds of a PlanMove.
const (
	// MoveCopy: To copies the partition (from CopySource) and becomes an
	// owner; From, if any, is released when To is ready.
	MoveCopy = "copy"
	// MoveDrop: From is released without a replacement.
	MoveDrop = "drop"
	// MovePromote: To, already an owner, becomes primary instead of From.
	MovePromote = "promote"
)

// PlanMove is one change of a partition's owners.
type PlanMove struct {
	Partition int    `json:"partition"`
	Kind      string `json:"kind"`
	// From loses the partition (copy, drop) or its primary role (promote);
	// FromRole is its role before: primary or replica.
	From     string `json:"from,omitempty"`
	FromRole Role   `json:"from_role,omitempty"`
	// To gains the partition (copy) or the primary role (promote); ToRole
	// is its role after: primary or replica.
	To     string `json:"to,omitempty"`
	ToRole Role   `json:"to_role,omitempty"`
	// CopySource is the live owner To copies from ("" when none is live).
	CopySource string `json:"copy_source,omitempty"`
	// Reason says why: join, leave, failure, rebalance, drain, as the
	// history will record it.
	Reason string `json:"reason,omitempty"`
	// Rule is the placement rule that chose To for a copy (placement.Rule
	// names).
	Rule string `json:"rule,omitempty"`
	// Bytes is the partition's size, when the application reported it.
	Bytes *int64 `json:"bytes,omitempty"`
}

// Balance describes how evenly a table spreads slots and primaries.
type Balance struct {
	Nodes     []NodeLoad  `json:"nodes"`
	Slots     LoadSummary `json:"slots"`
	Primaries LoadSummary `json:"primaries"`
	// SlotRatio and PrimaryRatio are the busiest node's count over the
	// mean (1 is perfectly even), over the nodes that own something.
	SlotRatio    float64 `json:"slot_ratio"`
	PrimaryRatio float64 `json:"primary_ratio"`
}

// PartitionChange is one change of a partition's owners, as recorded in
// the replicated state.
type PartitionChange struct {
	Partition int `json:"partition"`
	// Version is the map version of the change; At is when the leader
	// proposed it (Unix milliseconds; 0 for changes logged by versions
	// that did not record it).
	Version uint64 `json:"version"`
	At      int64  `json:"at,omitempty"`
	// Epoch is the partition's epoch after the change.
	Epoch uint64 `json:"epoch"`
	// Reason is initial, join, leave, failure, rebalance or drain.
	Reason string `json:"reason"`
	// Owners are the ready owners after the change, primary first.
	Owners  []string `json:"owners"`
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
	// PrevPrimary is the primary before the change, when it changed.
	PrevPrimary string `json:"prev_primary,omitempty"`
	// From is the node an added owner copied from; Rule the placement rule
	// that chose it.
	From string `json:"from,omitempty"`
	Rule string `json:"rule,omitempty"`
}

// PartitionHistory is the body of GET /partitions/history.
type PartitionHistory struct {
	Version uint64 `json:"version"`
	// Partition or Node is what was asked for.
	Partition *int   `json:"partition,omitempty"`
	Node      string `json:"node,omitempty"`
	// MaxPerPartition is how many changes each partition keeps.
	MaxPerPartition int `json:"max_per_partition"`
	// Changes are oldest first.
	Changes []PartitionChange `json:"changes"`
}

// ExplainInfo is the body of GET /partitions/explain: why a partition's
// owners are where they are.
type ExplainInfo struct {
	Partition         int    `json:"partition"`
	Version           uint64 `json:"version"`
	Epoch             uint64 `json:"epoch"`
	ReplicationFactor int    `json:"replication_factor"`
	// Zoning is strict (no two owners share a zone), preferred (too few
	// zones; the fill prefers a zone the partition lacks) or none.
	Zoning placement.Zoning `json:"zoning"`
	// Target are the owners placement wants now, primary first; Settled
	// is true when the partition's owners are exactly those.
	Target  []string `json:"target"`
	Settled bool     `json:"settled"`
	// Owners are the current owners and joiners, then the nodes the
	// target adds that are not joining yet.
	Owners []OwnerExplain `json:"owners"`
}

// OwnerExplain says why one node owns (or will own, or will lose) a
// partition.
type OwnerExplain struct {
	Node   string `json:"node"`
	Role   Role   `json:"role"`
	Zone   string `json:"zone,omitempty"`
	Weight int    `json:"weight"`
	// InTarget is true when placement keeps the node as an owner.
	InTarget bool `json:"in_target"`
	// Rule is the placement rule that puts the node in the target (kept,
	// fill, zone-swap, overfill, rebalance); PrimaryRule the one that makes
	// it the target's primary.
	Rule        string `json:"rule,omitempty"`
	PrimaryRule string `json:"primary_rule,omitempty"`
	// Share is the node's share of the target table; absent for a node
	// placement does not use (draining, dead, gone).
	Share *placement.Share `json:"share,omitempty"`
	// Since is the recorded change that made the node an owner, if the
	// partition's history still holds it.
	Since *PartitionChange `json:"since,omitempty"`
	// Why says it in words, one reason a line.
	Why []string `json:"why"`
}

// PartitionSizes is the body of GET /partitions/sizes: the sizes the
// application on this node reports for the partitions it owns.
type PartitionSizes struct {
	NodeID string `json:"node_id"`
	// Sizes maps partition numbers to bytes.
	Sizes map[int]int64 `json:"sizes"`
}
