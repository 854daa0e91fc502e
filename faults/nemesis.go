package faults

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"clusterkit.dev/clusterkit"
)

// FaultKind names a fault the nemesis injects.
type FaultKind string

// The faults. Targets are chosen when the fault begins, from the newest
// map: the raft leader, the primary of a key the clients use, a node in
// the middle of a copy, or any node.
const (
	CrashLeader    FaultKind = "crash-leader"    // SIGKILL, restarted from its data dir at heal
	CrashPrimary   FaultKind = "crash-primary"   // the same, a key's primary
	CrashStreaming FaultKind = "crash-streaming" // the same, a node copying or being copied from
	PausePrimary   FaultKind = "pause-primary"   // SIGSTOP past failover, SIGCONT at heal
	PauseLeader    FaultKind = "pause-leader"    // the same, the raft leader
	IsolateNode    FaultKind = "isolate"         // a key's primary cut off from every node, both ways
	IsolateLeader  FaultKind = "isolate-leader"  // the raft leader cut off
	SplitMinority  FaultKind = "split"           // the leader and one node cut off from the rest
	OneWay         FaultKind = "one-way"         // a key's primary's packets to the others dropped; theirs arrive
	DiskFull       FaultKind = "disk-full"       // a key's primary's data dir filled to the last byte
	TwoNodes       FaultKind = "two-nodes"       // a key's primary and one more node, each crashed, paused or cut off
	JoinNode       FaultKind = "join"            // a new node joins (under the other faults)
	DrainNode      FaultKind = "drain"           // a node is drained (under the other faults)
)

// Kinds are the faults a run draws from, membership changes excepted.
var Kinds = []FaultKind{CrashLeader, CrashPrimary, CrashStreaming, PausePrimary, PauseLeader,
	IsolateNode, IsolateLeader, SplitMinority, OneWay, DiskFull, TwoNodes}

// Nemesis injects faults into a cluster.
type Nemesis struct {
	C    *Cluster
	Keys []string
	Rnd  *rand.Rand
}

// active is an injected fault and how to heal it.
type active struct {
	rec  FaultRecord
	heal func() error
}

// Inject begins a fault of kind k and returns it; heal ends it.
func (ne *Nemesis) Inject(ctx context.Context, k FaultKind, now int64) (*active, error) {
	m, err := ne.C.NewestMap(ctx)
	if err != nil {
		return nil, err
	}
	a := &active{rec: FaultRecord{Kind: string(k), Start: now}}
	var targets []*Node
	switch k {
	case CrashLeader, PauseLeader, IsolateLeader:
		targets = ne.nodes(m.LeaderID)
	case CrashPrimary, PausePrimary, IsolateNode, OneWay, DiskFull:
		targets = ne.nodes(ne.primaryOfSomeKey(m))
	case CrashStreaming:
		targets = ne.nodes(ne.streaming(m))
	case SplitMinority:
		targets = ne.withOther(ne.nodes(m.LeaderID))
	case TwoNodes:
		targets = ne.withOther(ne.nodes(ne.primaryOfSomeKey(m)))
	case JoinNode:
		n, err := ne.C.AddNode()
		if err != nil {
			return nil, err
		}
		a.rec.Targets = []string{n.ID}
		a.heal = func() error { return nil }
		return a, nil
	case DrainNode:
		targets = ne.nodes(ne.primaryOfSomeKey(m))
	default:
		return nil, fmt.Errorf("unknown fault %q", k)
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("%s: no target in map version %d", k, m.Version)
	}
	for _, t := range targets {
		a.rec.Targets = append(a.rec.Targets, t.ID)
	}
	a.rec.fromMap(m)
	v := targets[0]
	switch k {
	case CrashLeader, CrashPrimary, CrashStreaming:
		return a, ne.act(a, crash, v)
	case PausePrimary, PauseLeader:
		return a, ne.act(a, pause, v)
	case IsolateNode, IsolateLeader:
		return a, ne.act(a, isolate, v)
	case TwoNodes:
		var notes []string
		for _, t := range targets {
			act := []action{crash, pause, isolate}[ne.Rnd.IntN(3)]
			notes = append(notes, fmt.Sprintf("%s %s", act, t.ID))
			if err := ne.act(a, act, t); err != nil {
				return a, err
			}
		}
		a.rec.Note = strings.Join(notes, ", ")
		return a, nil
	case SplitMinority:
		var rest []*Host
		for _, o := range ne.C.Nodes() {
			if !slices.Contains(targets, o) {
				rest = append(rest, o.Host)
			}
		}
		a.heal = ne.C.Net.Heal
		return a, ne.C.Net.Split([]*Host{targets[0].Host, targets[1].Host}, rest)
	case OneWay:
		a.heal = ne.C.Net.Heal
		for _, o := range ne.C.Nodes() {
			if o != v {
				if err := ne.C.Net.Drop(v.Host, o.Host); err != nil {
					return a, err
				}
			}
		}
		return a, nil
	case DiskFull:
		path := filepath.Join(v.DataDir, "filler")
		a.heal = func() error { return os.Remove(path) }
		n, err := fill(path)
		a.rec.Note = fmt.Sprintf("filled %d bytes", n)
		return a, err
	case DrainNode:
		a.heal = func() error { return nil }
		return a, ne.drain(ctx, v.ID)
	}
	return a, nil
}

// action is what a fault does to one node.
type action string

const (
	crash   action = "crash"   // SIGKILL; started again from its data dir at heal
	pause   action = "pause"   // SIGSTOP; SIGCONT at heal
	isolate action = "isolate" // cut off from every other node both ways; healed at heal
)

// act does act to v and adds its undoing to a's heal, which undoes every
// action in the reverse order.
func (ne *Nemesis) act(a *active, act action, v *Node) error {
	var undo func() error
	var err error
	switch act {
	case crash:
		undo, err = v.Start, v.Kill()
	case pause:
		undo, err = v.Resume, v.Pause()
	case isolate:
		undo, err = ne.C.Net.Heal, ne.C.Net.Isolate(v.Host)
	}
	prev := a.heal
	a.heal = func() error {
		if err := undo(); err != nil {
			return err
		}
		if prev != nil {
			return prev()
		}
		return nil
	}
	return err
}

// withOther adds a random running node that is not among targets.
func (ne *Nemesis) withOther(targets []*Node) []*Node {
	if len(targets) == 0 {
		return nil
	}
	for _, n := range ne.Rnd.Perm(len(ne.C.Nodes())) {
		o := ne.C.Nodes()[n]
		if !slices.Contains(targets, o) && o.Running() {
			return append(targets, o)
		}
	}
	return targets
}

// nodes returns the running nodes among ids.
func (ne *Nemesis) nodes(ids ...string) []*Node {
	var out []*Node
	for _, id := range ids {
		if n := ne.C.Node(id); n != nil && n.Running() {
			out = append(out, n)
		}
	}
	return out
}

// drain asks the nodes in turn to drain id until one takes the request
// (a node that just restarted or lost the leader refuses it) or 15 s pass.
func (ne *Nemesis) drain(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		var err error
		for _, n := range ne.C.Nodes() {
			if n.ID == id || !n.Running() {
				continue
			}
			if err = ne.C.Drain(ctx, n, id); err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("drain %s: %w", id, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// primaryOfSomeKey is the primary of a random client key's partition.
func (ne *Nemesis) primaryOfSomeKey(m *clusterkit.ClusterInfo) string {
	key := ne.Keys[ne.Rnd.IntN(len(ne.Keys))]
	return m.Partitions[clusterkit.PartitionIndex(key, m.PartitionCount)].PrimaryNode
}

// streaming is a node that is copying a partition or being copied from,
// or a key's primary when no copy runs.
func (ne *Nemesis) streaming(m *clusterkit.ClusterInfo) string {
	for _, p := range m.Partitions {
		if len(p.JoiningNodes) > 0 {
			return p.JoiningNodes[ne.Rnd.IntN(len(p.JoiningNodes))]
		}
	}
	return ne.primaryOfSomeKey(m)
}

// fromMap fills in, from the map m in force when the fault began, the
// partitions its targets touched, their owners, those the targets led and
// those left without a majority of their owners.
func (r *FaultRecord) fromMap(m *clusterkit.ClusterInfo) {
	r.Partitions = touched(m, r.Targets)
	r.MapVersion, r.Owners = m.Version, map[int][]string{}
	for _, p := range r.Partitions {
		q := m.Partitions[p]
		owners := append([]string{q.PrimaryNode}, q.ReplicaNodes...)
		r.Owners[p] = append(slices.Clone(owners), q.JoiningNodes...)
		lost := 0
		for _, o := range owners {
			if slices.Contains(r.Targets, o) {
				lost++
			}
		}
		switch {
		case 2*(len(owners)-lost) <= len(owners):
			r.NoQuorum = append(r.NoQuorum, p)
		case slices.Contains(r.Targets, q.PrimaryNode):
			r.Led = append(r.Led, p)
		}
	}
}

// touched lists the partitions that ids own or are joining in m.
func touched(m *clusterkit.ClusterInfo, ids []string) []int {
	var out []int
	for _, p := range m.Partitions {
		owners := append(append([]string{p.PrimaryNode}, p.ReplicaNodes...), p.JoiningNodes...)
		for _, id := range ids {
			if slices.Contains(owners, id) {
				out = append(out, p.Index)
				break
			}
		}
	}
	return out
}

// fill writes zeros to path until the file system is full and returns how
// many bytes it wrote.
func fill(path string) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	var n int64
	for size := len(buf); size > 0; {
		w, err := f.Write(buf[:size])
		n += int64(w)
		switch {
		case errors.Is(err, syscall.ENOSPC):
			size /= 2 // fill the last pages too
		case err != nil:
			return n, err
		}
	}
	return n, f.Sync()
}

// describe is a fault's line in the run's log.
func (a *active) describe() string {
	s := fmt.Sprintf("%s %s", a.rec.Kind, strings.Join(a.rec.Targets, ","))
	if a.rec.Note != "" {
		s += " (" + a.rec.Note + ")"
	}
	return s
}
