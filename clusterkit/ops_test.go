package clusterkit_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
)

// partitionBytes is the size every node reports for partition i.
func partitionBytes(i int) int64 { return 1000 + int64(i) }

func withSizes() cktest.Option {
	return cktest.WithInit(func(_ *cktest.Member, ck *clusterkit.ClusterKit) {
		ck.SetPartitionSizes(func(i int) (int64, bool) { return partitionBytes(i), true })
	})
}

// waitSettled waits until every running member is at the same version, no
// handoff is in flight and the map has stopped changing.
func waitSettled(t *testing.T, c *cktest.Cluster) {
	t.Helper()
	c.Eventually("a settled map", func() error {
		if err := c.Converged(false); err != nil {
			return err
		}
		ck := c.Running()[0].CK
		v := ck.Version()
		for _, p := range ck.Partitions() {
			if len(p.JoiningNodes) > 0 {
				return fmt.Errorf("partition %d: %v joining", p.Index, p.JoiningNodes)
			}
		}
		if err := c.Converged(false); err != nil {
			return err
		}
		if nv := ck.Version(); nv != v {
			return fmt.Errorf("version %d -> %d", v, nv)
		}
		return nil
	})
}

// waitChanged waits until the leader has begun to act on a change: the
// owners differ from before. A map can look settled between the change's
// commit and the leader's first move.
func waitChanged(t *testing.T, c *cktest.Cluster, before [][]string) {
	t.Helper()
	c.Eventually("the owners to change", func() error {
		if reflect.DeepEqual(cktest.Owners(c.Running()[0].CK), before) {
			return errors.New("the owners are as before the change")
		}
		return nil
	})
}

// applyPlan returns the table before with plan's moves made, primary first
// and the replicas sorted, as the same form of the actual table.
func applyPlan(before [][]string, moves []clusterkit.PlanMove) [][]string {
	out := make([][]string, len(before))
	for i, o := range before {
		out[i] = slices.Clone(o)
	}
	primary := map[int]string{}
	for _, m := range moves {
		o := out[m.Partition]
		switch m.Kind {
		case clusterkit.MoveCopy:
			if m.From != "" {
				o = slices.DeleteFunc(o, func(id string) bool { return id == m.From })
			}
			o = append(o, m.To)
			if m.ToRole == clusterkit.RolePrimary {
				primary[m.Partition] = m.To
			}
		case clusterkit.MoveDrop:
			o = slices.DeleteFunc(o, func(id string) bool { return id == m.From })
		case clusterkit.MovePromote:
			primary[m.Partition] = m.To
		}
		out[m.Partition] = o
	}
	for i, o := range out {
		p := before[i][0]
		if np, ok := primary[i]; ok {
			p = np
		}
		out[i] = canonical(p, o)
	}
	return out
}

func canonical(primary string, owners []string) []string {
	rest := slices.DeleteFunc(slices.Clone(owners), func(id string) bool { return id == primary })
	slices.Sort(rest)
	return append([]string{primary}, rest...)
}

func canonicalTable(t [][]string) [][]string {
	out := make([][]string, len(t))
	for i, o := range t {
		out[i] = canonical(o[0], o)
	}
	return out
}

// historySince returns the (partition, node) pairs that gained and lost
// ownership after version v, from the replicated history.
func historySince(ck *clusterkit.ClusterKit, v uint64) (added, removed []string) {
	for i := range ck.PartitionCount() {
		for _, c := range ck.PartitionHistory(i) {
			if c.Version <= v {
				continue
			}
			for _, id := range c.Added {
				added = append(added, fmt.Sprintf("%d/%s", i, id))
			}
			for _, id := range c.Removed {
				removed = append(removed, fmt.Sprintf("%d/%s", i, id))
			}
		}
	}
	slices.Sort(added)
	slices.Sort(removed)
	return added, removed
}

func planPairs(p clusterkit.PlanInfo) (added, removed []string) {
	for _, m := range p.Moves {
		if m.Kind == clusterkit.MoveCopy {
			added = append(added, fmt.Sprintf("%d/%s", m.Partition, m.To))
		}
		if m.Kind != clusterkit.MovePromote && m.From != "" {
			removed = append(removed, fmt.Sprintf("%d/%s", m.Partition, m.From))
		}
	}
	slices.Sort(added)
	slices.Sort(removed)
	return added, removed
}

// checkPlanMade checks that the leader made exactly the moves of plan:
// the same owners gained and lost (from the replicated history) and the
// same final table, primaries included.
func checkPlanMade(t *testing.T, c *cktest.Cluster, plan clusterkit.PlanInfo, before [][]string) {
	t.Helper()
	// A settled map can still be short of a last release or primary
	// handover; the leader must reach the planned table within a few
	// seconds, with the planned moves, and stay there.
	var problems []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		problems = problems[:0]
		ck := c.Leader().CK
		gotAdded, gotRemoved := historySince(ck, plan.Version)
		wantAdded, wantRemoved := planPairs(plan)
		if !slices.Equal(gotAdded, wantAdded) || !slices.Equal(gotRemoved, wantRemoved) {
			problems = append(problems, fmt.Sprintf("the leader's moves differ from the plan's:\nadded   %v\nplanned %v\nremoved %v\nplanned %v", gotAdded, wantAdded, gotRemoved, wantRemoved))
		}
		if got, want := canonicalTable(cktest.Owners(ck)), applyPlan(before, plan.Moves); !reflect.DeepEqual(got, want) {
			problems = append(problems, fmt.Sprintf("the table the leader reached differs from the plan's:\n got %v\nwant %v", got, want))
		}
		if len(problems) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// TestPlanIsWhatTheLeaderDoes asks a follower for the plan of a drain and
// of a join, makes each change, and checks that the leader made exactly
// the planned moves, and that the plan counted the bytes the application
// reported for every copy.
func TestPlanIsWhatTheLeaderDoes(t *testing.T) {
	// A dry run does not advance the clock: a new node is not settled
	// (ReReplicationDelay) in it, so no primary moves to node-6. The
	// leader hands primaries to node-6 once the delay passes, and a
	// handover in the middle of the copies changes which owner a later
	// copy replaces; a long delay keeps the comparison to what the dry run
	// can know (a CI run whose copies outlasted LocalConfig's 3 s differed).
	cfg := clusterkit.LocalConfig()
	cfg.ReReplicationDelay = time.Minute
	c := cktest.New(t, 5, withSizes(), cktest.WithConfig(cfg))
	c.WaitConverged()
	follower := c.Member(1)
	if follower.CK.IsLeader() {
		follower = c.Member(2)
	}

	before := cktest.Owners(follower.CK)
	var plan clusterkit.PlanInfo
	getJSON(t, follower.URL("/cluster/plan?drain=node-3"), http.StatusOK, &plan)
	if plan.Version != follower.CK.Version() || len(plan.Moves) == 0 || plan.Copies == 0 {
		t.Fatalf("drain plan: %+v", plan)
	}
	var wantBytes int64
	for _, m := range plan.Moves {
		if m.Kind == clusterkit.MoveCopy {
			wantBytes += partitionBytes(m.Partition)
			if m.Bytes == nil || *m.Bytes != partitionBytes(m.Partition) || m.CopySource == "" || m.Rule == "" {
				t.Errorf("copy move %+v", m)
			}
		}
	}
	if _, removed := planPairs(plan); len(removed) == 0 || slices.ContainsFunc(removed, func(r string) bool { return !strings.HasSuffix(r, "/node-3") }) {
		t.Errorf("a drain of node-3 releases %v", removed)
	}
	if plan.BytesToCopy != wantBytes || plan.BytesKnown != plan.Copies {
		t.Errorf("plan copies %d bytes of %d known copies, want %d bytes of %d", plan.BytesToCopy, plan.BytesKnown, wantBytes, plan.Copies)
	}
	for _, n := range plan.After.Nodes {
		if n.ID == "node-3" {
			t.Errorf("node-3 still owns partitions after the planned drain: %+v", n)
		}
	}
	if plan.After.Slots.Max-plan.After.Slots.Min > 1 {
		t.Errorf("uneven plan: %+v", plan.After)
	}
	if follower.CK.Version() != plan.Version {
		t.Fatalf("the dry run changed the map: version %d -> %d", plan.Version, follower.CK.Version())
	}
	do(t, "POST", follower.URL("/cluster/drain"), `{"id":"node-3"}`, nil)
	waitChanged(t, c, before)
	waitSettled(t, c)
	checkPlanMade(t, c, plan, before)

	// A join of a node in a zone of its own, with weight 2.
	before = cktest.Owners(follower.CK)
	plan = clusterkit.PlanInfo{}
	getJSON(t, follower.URL("/cluster/plan?join=node-6&zone=z9&weight=2"), http.StatusOK, &plan)
	if plan.Copies == 0 || !reflect.DeepEqual(plan.Change, clusterkit.PlanChange{Join: []string{"node-6"}, Zone: "z9", Weight: 2}) {
		t.Fatalf("join plan: %+v", plan)
	}
	c.Add(func(m *cktest.Member) {
		m.Options.Zone, m.Options.Weight = "z9", 2
		m.Init = func(ck *clusterkit.ClusterKit) {
			ck.SetPartitionSizes(func(i int) (int64, bool) { return partitionBytes(i), true })
		}
	})
	waitChanged(t, c, before)
	waitSettled(t, c)
	checkPlanMade(t, c, plan, before)
}

// TestOpsEndpointsRefuseBadInput checks that every bad parameter of the
// operator endpoints is a 400 naming the field, and changes nothing.
func TestOpsEndpointsRefuseBadInput(t *testing.T) {
	c := cktest.New(t, 3)
	c.WaitConverged()
	m := c.Member(1)
	version := m.CK.Version()
	for _, tc := range []struct{ path, field string }{
		{"/cluster/plan?join=node-1", "join"},
		{"/cluster/plan?join=a/b", "join"},
		{"/cluster/plan?join=x,x", "join"},
		{"/cluster/plan?leave=ghost", "leave"},
		{"/cluster/plan?drain=ghost", "drain"},
		{"/cluster/plan?leave=node-2&drain=node-2", "drain"},
		{"/cluster/plan?zone=z1", "zone"},
		{"/cluster/plan?join=x&weight=0", "weight"},
		{"/cluster/plan?join=x&weight=heavy", "weight"},
		{"/cluster/plan?weight=2", "weight"},
		{"/partitions/history", "partition"},
		{"/partitions/history?partition=1&node=node-1", "partition"},
		{"/partitions/history?partition=16", "partition"},
		{"/partitions/history?partition=x", "partition"},
		{"/partitions/history?node=a/b", "node"},
		{"/partitions/history?node=node-1&limit=0", "limit"},
		{"/partitions/explain", "partition"},
		{"/partitions/explain?partition=-1", "partition"},
		{"/partitions/explain?partition=16", "partition"},
	} {
		resp, body := do(t, "GET", m.URL(tc.path), "", nil)
		var e clusterkit.ErrorBody
		if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error, tc.field) {
			t.Errorf("%s: %d %s, want 400 naming %q", tc.path, resp.StatusCode, body, tc.field)
		}
	}
	if v := m.CK.Version(); v != version {
		t.Errorf("version %d after bad requests, want %d", v, version)
	}
}

// TestExplainAndHistory checks that explain accounts for every owner of a
// settled partition with the rule and the recorded change that put it
// there, and that a node's history lists the drain that emptied it.
func TestExplainAndHistory(t *testing.T) {
	c := cktest.New(t, 4)
	c.WaitConverged()
	m := c.Member(2)
	var ex clusterkit.ExplainInfo
	getJSON(t, m.URL("/partitions/explain?partition=3"), http.StatusOK, &ex)
	p := m.CK.Partitions()[3]
	owners := append([]string{p.PrimaryNode}, p.ReplicaNodes...)
	if !ex.Settled || !slices.Equal(ex.Target, owners) || len(ex.Owners) != len(owners) || ex.Epoch != p.Epoch {
		t.Fatalf("explain of a settled partition: %+v, owners %v", ex, owners)
	}
	for k, o := range ex.Owners {
		if o.Node != owners[k] || !o.InTarget || o.Rule != "kept" || o.Since == nil || o.Share == nil || len(o.Why) < 3 {
			t.Errorf("owner %d: %+v", k, o)
		}
	}
	if ex.Owners[0].Role != clusterkit.RolePrimary || ex.Owners[0].PrimaryRule != "kept" {
		t.Errorf("primary: %+v", ex.Owners[0])
	}

	v := m.CK.Version()
	do(t, "POST", m.URL("/cluster/drain"), `{"id":"node-4"}`, nil)
	// The leader first hands node-4's primary roles over and then moves its
	// partitions: the map can look settled between the two.
	c.Eventually("node-4 owns nothing", func() error {
		for _, p := range m.CK.Partitions() {
			if p.PrimaryNode == "node-4" || slices.Contains(p.ReplicaNodes, "node-4") || slices.Contains(p.JoiningNodes, "node-4") {
				return fmt.Errorf("node-4 still holds partition %d", p.Index)
			}
		}
		return nil
	})
	waitSettled(t, c)
	var h clusterkit.PartitionHistory
	getJSON(t, m.URL("/partitions/history?node=node-4"), http.StatusOK, &h)
	drained := 0
	for _, ch := range h.Changes {
		if ch.Version > v && slices.Contains(ch.Removed, "node-4") {
			drained++
			if ch.Reason != "drain" || ch.At == 0 || slices.Contains(ch.Owners, "node-4") {
				t.Errorf("drain change %+v", ch)
			}
		}
	}
	if drained == 0 {
		t.Fatalf("node-4's history shows no drain: %+v", h)
	}
	for _, p := range m.CK.Partitions() {
		if p.PrimaryNode == "node-4" || slices.Contains(p.ReplicaNodes, "node-4") {
			t.Fatalf("node-4 still owns partition %d", p.Index)
		}
	}
}

// TestHistorySurvivesRestart checks that every node answers the same
// history, and the same again after every node restarts.
func TestHistorySurvivesRestart(t *testing.T) {
	c := cktest.New(t, 3)
	c.WaitConverged()
	do(t, "POST", c.Member(0).URL("/cluster/drain"), `{"id":"node-2"}`, nil)
	waitSettled(t, c)
	histories := func() map[string]string {
		out := map[string]string{}
		for _, m := range c.Running() {
			for i := range 16 {
				out[fmt.Sprintf("%s/%d", m.ID, i)] = string(getBody(t, m.URL(fmt.Sprintf("/partitions/history?partition=%d", i)), http.StatusOK))
			}
		}
		return out
	}
	before := histories()
	for k, v := range before {
		if other := before["node-1/"+strings.Split(k, "/")[1]]; v != other {
			t.Fatalf("%s answers %s, node-1 %s", k, v, other)
		}
	}
	var h clusterkit.PartitionHistory
	if err := json.Unmarshal([]byte(before["node-1/0"]), &h); err != nil || len(h.Changes) < 2 {
		t.Fatalf("partition 0 history %+v (%v): want the initial table and the drain", h, err)
	}
	// node-2 and node-3 restore from a snapshot, node-1 replays its log.
	for _, m := range c.Running()[1:] {
		if err := m.CK.Snapshot(); err != nil {
			t.Fatalf("%s: snapshot: %v", m.ID, err)
		}
	}
	c.StopAll()
	c.StartAll()
	waitSettled(t, c)
	after := histories()
	for k, v := range before {
		var a, b clusterkit.PartitionHistory
		_ = json.Unmarshal([]byte(v), &b)
		_ = json.Unmarshal([]byte(after[k]), &a)
		if !reflect.DeepEqual(a.Changes, b.Changes) {
			t.Errorf("%s: history after restart\n%s\nbefore\n%s", k, after[k], v)
		}
	}
}
