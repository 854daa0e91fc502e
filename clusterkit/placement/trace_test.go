package placement

import (
	"reflect"
	"slices"
	"testing"
)

// TestComputeTraceSameTable checks that ComputeTrace returns Compute's
// table and that its rules match what happened: after a join, owners the
// join did not move are kept, the new node's slots came by rebalance, and
// every share lies within its bounds.
func TestComputeTraceSameTable(t *testing.T) {
	nodes := makeNodes(6)
	cfg := Config{Partitions: 64, ReplicationFactor: 3}
	first, tr, err := ComputeTrace(nil, nodes, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if want := mustCompute(t, nil, nodes, cfg); !reflect.DeepEqual(first, want) {
		t.Fatal("ComputeTrace's first table differs from Compute's")
	}
	for p, part := range first {
		for _, id := range part.Owners {
			if r := tr.OwnerRule(p, id); r != RuleFill {
				t.Fatalf("first table: partition %d owner %s placed by %v, want fill", p, id, r)
			}
		}
	}
	joined := append(slices.Clone(nodes), Node{ID: "node-new"})
	next, tr, err := ComputeTrace(first, joined, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if want := mustCompute(t, first, joined, cfg); !reflect.DeepEqual(next, want) {
		t.Fatal("ComputeTrace's join table differs from Compute's")
	}
	newSlots := 0
	for p, part := range next {
		for _, id := range part.Owners {
			r := tr.OwnerRule(p, id)
			switch {
			case id == "node-new":
				newSlots++
				if r != RuleRebalance {
					t.Errorf("partition %d: the new node placed by %v, want rebalance", p, r)
				}
			case slices.Contains(first[p].Owners, id) && r != RuleKept:
				t.Errorf("partition %d: %s kept its slot but the rule is %v", p, id, r)
			}
		}
		if tr.OwnerRule(p, "absent") != RuleNone {
			t.Errorf("partition %d: a node that owns nothing has a rule", p)
		}
		pr := tr.PrimaryRule(p)
		if part.Primary() == first[p].Primary() && pr != RuleKept {
			t.Errorf("partition %d kept primary %s but the rule is %v", p, part.Primary(), pr)
		}
		if part.Primary() != first[p].Primary() && pr == RuleKept {
			t.Errorf("partition %d changed primary but the rule says kept", p)
		}
	}
	for _, n := range joined {
		s, ok := tr.Share(n.ID)
		if !ok || s.Slots != s.TargetSlots || s.Primaries < s.MinPrimaries || s.Primaries > s.MaxPrimaries {
			t.Errorf("%s: share %+v (ok %v) is off its targets", n.ID, s, ok)
		}
	}
	if s, _ := tr.Share("node-new"); s.Slots != newSlots {
		t.Errorf("share says %d slots, the table %d", s.Slots, newSlots)
	}
	if tr.Zoning() != ZoningNone {
		t.Errorf("zoning %v without zones", tr.Zoning())
	}
}

// TestComputeTraceZones checks the zoning mode a trace reports.
func TestComputeTraceZones(t *testing.T) {
	cfg := Config{Partitions: 8, ReplicationFactor: 2}
	for _, tc := range []struct {
		zones []string
		want  Zoning
	}{
		{[]string{"a", "b", "a", "b"}, ZoningStrict},
		{[]string{"a", "a", "a", "a"}, ZoningPreferred},
		{[]string{"", "", "", ""}, ZoningNone},
	} {
		var nodes []Node
		for i, z := range tc.zones {
			nodes = append(nodes, Node{ID: string(rune('a' + i)), Zone: z})
		}
		_, tr, err := ComputeTrace(nil, nodes, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Zoning() != tc.want {
			t.Errorf("zones %v: zoning %v, want %v", tc.zones, tr.Zoning(), tc.want)
		}
	}
}

func TestRuleText(t *testing.T) {
	for r := RuleNone; r <= RulePrimaryBalance; r++ {
		b, _ := r.MarshalText()
		var back Rule
		if err := back.UnmarshalText(b); err != nil || back != r {
			t.Errorf("%v: round trip gives %v, %v", r, back, err)
		}
	}
	var r Rule
	if r.UnmarshalText([]byte("nonsense")) == nil {
		t.Error("an unknown rule name decodes")
	}
}
