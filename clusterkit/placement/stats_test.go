package placement

import (
	"reflect"
	"testing"
)

func TestSummarize(t *testing.T) {
	tab := Table{
		{Owners: []string{"a", "b"}},
		{Owners: []string{"b", "c"}},
		{Owners: []string{"a", "c"}},
		{Owners: []string{"a", "b"}},
		{},
	}
	got := Summarize(tab)
	want := Stats{
		Partitions: 5,
		Nodes: []NodeStats{
			{ID: "a", Slots: 3, Primaries: 3},
			{ID: "b", Slots: 3, Primaries: 1},
			{ID: "c", Slots: 2, Primaries: 0},
		},
		MinSlots: 2, MaxSlots: 3,
		MinPrimaries: 0, MaxPrimaries: 3,
		SlotRatio:    3 / (8.0 / 3),
		PrimaryRatio: 3 / (4.0 / 3),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Summarize = %+v\nwant %+v", got, want)
	}
	if empty := Summarize(make(Table, 2)); !reflect.DeepEqual(empty, Stats{Partitions: 2}) {
		t.Errorf("Summarize(empty) = %+v", empty)
	}
}

func TestDiff(t *testing.T) {
	prev := Table{
		{Owners: []string{"a", "b"}},
		{Owners: []string{"b", "c"}},
	}
	next := Table{
		{Owners: []string{"b", "a"}}, // same owners, primary changed
		{Owners: []string{"b", "d"}}, // d replaces c
		{Owners: []string{"e"}},      // beyond prev: all new
	}
	moved, changed := Diff(prev, next)
	if moved != 2 || changed != 2 {
		t.Errorf("Diff = %d moved, %d changed; want 2 and 2", moved, changed)
	}
	if moved, changed := Diff(next, next); moved != 0 || changed != 0 {
		t.Errorf("Diff(t, t) = %d, %d; want 0, 0", moved, changed)
	}
}
