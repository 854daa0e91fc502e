package clusterkit

import "clusterkit.dev/clusterkit/wire"

// The HTTP API's bodies, headers and status are defined in package wire,
// which clients import without the dependencies of a node; they are the
// same types here.

// The map and its members.
type (
	Node          = wire.Node
	NodeState     = wire.NodeState
	Role          = wire.Role
	Partition     = wire.Partition
	ClusterInfo   = wire.ClusterInfo
	PartitionList = wire.PartitionList
	KeyInfo       = wire.KeyInfo
)

// Node states.
const (
	NodeAlive   = wire.NodeAlive
	NodeSuspect = wire.NodeSuspect
	NodeDead    = wire.NodeDead
)

// Roles.
const (
	RoleNone    = wire.RoleNone
	RolePrimary = wire.RolePrimary
	RoleReplica = wire.RoleReplica
	RoleJoining = wire.RoleJoining
)

// The routing protocol (see wire.HeaderMapVersion) and the error body.
const (
	HeaderMapVersion = wire.HeaderMapVersion
	HeaderEpoch      = wire.HeaderEpoch
	StatusNotOwner   = wire.StatusNotOwner
)

type (
	NotOwnerBody = wire.NotOwnerBody
	ErrorBody    = wire.ErrorBody
)

// Health, consensus and load.
type (
	Health         = wire.Health
	LeaderInfo     = wire.LeaderInfo
	ConsensusStats = wire.ConsensusStats
	PartitionStats = wire.PartitionStats
	NodeLoad       = wire.NodeLoad
	LoadSummary    = wire.LoadSummary
)

// Membership.
type (
	JoinRequest     = wire.JoinRequest
	JoinResponse    = wire.JoinResponse
	LeaveRequest    = wire.LeaveRequest
	DrainRequest    = wire.DrainRequest
	ReadyRequest    = wire.ReadyRequest
	FormationStatus = wire.FormationStatus
	PromiseRequest  = wire.PromiseRequest
	PromiseResponse = wire.PromiseResponse
)

// The operator endpoints.
type (
	PlanInfo         = wire.PlanInfo
	PlanChange       = wire.PlanChange
	PlanMove         = wire.PlanMove
	Balance          = wire.Balance
	PartitionChange  = wire.PartitionChange
	PartitionHistory = wire.PartitionHistory
	ExplainInfo      = wire.ExplainInfo
	OwnerExplain     = wire.OwnerExplain
	PartitionSizes   = wire.PartitionSizes
)

// Move kinds of a PlanMove.
const (
	MoveCopy    = wire.MoveCopy
	MoveDrop    = wire.MoveDrop
	MovePromote = wire.MovePromote
)
