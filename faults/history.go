package faults

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"
)

// Kind is what an operation did.
type Kind string

// Operation kinds.
const (
	Write Kind = "write"
	Read  Kind = "read"
)

// Result is how an operation ended.
type Result string

// Results. An operation that timed out or failed after its request may
// have reached a node is Maybe: the checkers let it take effect or not.
// A Failed operation did not take effect (refused before any node
// applied it: connection refused, misdirected, invalid).
const (
	OK     Result = "ok"
	Maybe  Result = "maybe"
	Failed Result = "failed"
)

// Op is one client operation. Times are nanoseconds since the run began.
type Op struct {
	Client int    `json:"client"`
	Kind   Kind   `json:"kind"`
	Key    string `json:"key"`
	Value  string `json:"value"` // written, or read ("" for absent)
	Call   int64  `json:"call"`
	Return int64  `json:"return"`
	Result Result `json:"result"`
	Node   string `json:"node,omitempty"`
	Err    string `json:"err,omitempty"`
}

// FaultRecord is one fault of a run, as injected.
type FaultRecord struct {
	Kind    string   `json:"kind"`
	Targets []string `json:"targets"`
	Start   int64    `json:"start"`
	Heal    int64    `json:"heal"`
	// Partitions the fault touched: those the targets owned when it began.
	Partitions []int `json:"partitions"`
	// Led are the partitions the targets were primary of when it began,
	// those in NoQuorum excepted.
	Led []int `json:"led,omitempty"`
	// NoQuorum are the partitions whose owners outside the targets were
	// not a majority: no strategy promises them service until the fault
	// heals.
	NoQuorum []int `json:"no_quorum,omitempty"`
	// Owners of the touched partitions when it began, primary first.
	Owners     map[int][]string `json:"owners,omitempty"`
	MapVersion uint64           `json:"map_version"`
	Note       string           `json:"note,omitempty"`
}

// History is what a run recorded: enough to check it again.
type History struct {
	Strategy   string        `json:"strategy"`
	Seed       uint64        `json:"seed"`
	Partitions int           `json:"partitions"`
	Ops        []Op          `json:"ops"`
	Faults     []FaultRecord `json:"faults"`
	// Maps are the maps the nodes served, each the first time a node was
	// seen with its version.
	Maps []MapRecord `json:"maps,omitempty"`
	// End is when the last operation returned.
	End int64 `json:"end"`
}

// MapRecord is a node's map as sampled.
type MapRecord struct {
	At         int64             `json:"at"`
	Node       string            `json:"node"`
	Version    uint64            `json:"version"`
	Leader     string            `json:"leader"`
	Partitions []PartitionRecord `json:"partitions"`
}

// PartitionRecord is one partition of a sampled map.
type PartitionRecord struct {
	Index    int      `json:"index"`
	Epoch    uint64   `json:"epoch"`
	Primary  string   `json:"primary"`
	Replicas []string `json:"replicas,omitempty"`
	Joining  []string `json:"joining,omitempty"`
}

// Recorder collects operations from concurrent clients.
type Recorder struct {
	start time.Time
	mu    sync.Mutex
	ops   []Op
}

// NewRecorder starts the run's clock.
func NewRecorder() *Recorder { return &Recorder{start: time.Now()} }

// Now is the time since the run began.
func (r *Recorder) Now() int64 { return int64(time.Since(r.start)) }

// Add records op.
func (r *Recorder) Add(op Op) {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
}

// Ops returns the operations recorded so far, in order of call.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	ops := slices.Clone(r.ops)
	r.mu.Unlock()
	slices.SortStableFunc(ops, func(a, b Op) int { return cmp.Compare(a.Call, b.Call) })
	return ops
}

// Save writes h to path as JSON.
func (h *History) Save(path string) error {
	b, err := json.MarshalIndent(h, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// LoadHistory reads a history saved by Save.
func LoadHistory(path string) (*History, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var h History
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &h, nil
}
