package client

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestLagFollowsTheCopiesOfAcknowledgedWrites(t *testing.T) {
	var lt lagTracker
	t0 := time.Now()
	fail := errors.New("down")

	// a answers before the write returns, c fails before; b answers after.
	w1 := lt.track([]string{"a", "b", "c"}, t0)
	w1.answer(0, nil)
	w1.answer(2, fail)
	w1.returned(true)
	// A second write, older than nothing: b and c still owe it.
	w2 := lt.track([]string{"a", "b", "c"}, t0.Add(time.Second))
	w2.answer(0, nil)
	w2.returned(true)
	// A write that failed is no one's lag.
	w3 := lt.track([]string{"a", "b", "c"}, t0)
	w3.answer(0, fail)
	w3.returned(false)
	w3.answer(1, fail)

	got := lt.snapshot(t0.Add(3 * time.Second))
	want := []NodeLag{
		{Node: "b", Operations: 2, Seconds: 3},
		{Node: "c", Operations: 1, Seconds: 2, Missed: 1},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("lag %+v, want %+v", got, want)
	}

	w1.answer(1, nil)
	w2.answer(1, fail)
	w2.answer(2, nil)
	for _, l := range lt.snapshot(t0.Add(4 * time.Second)) {
		wantMissed := map[string]uint64{"b": 1, "c": 1}[l.Node]
		if l.Operations != 0 || l.Seconds != 0 || l.Missed != wantMissed {
			t.Errorf("after every answer: %+v, want no lag and %d missed", l, wantMissed)
		}
	}
}

func TestLagListsTheNodesOfTheMapAtZero(t *testing.T) {
	var lt lagTracker
	t0 := time.Now()
	if got := lt.snapshot(t0, "a", "b"); len(got) != 2 || got[0] != (NodeLag{Node: "a"}) || got[1] != (NodeLag{Node: "b"}) {
		t.Fatalf("before any write: %+v, want a and b at 0", got)
	}
	w := lt.track([]string{"b", "d"}, t0)
	w.returned(true)
	got := lt.snapshot(t0.Add(time.Second), "a", "b", "c")
	want := []NodeLag{
		{Node: "a"},
		{Node: "b", Operations: 1, Seconds: 1},
		{Node: "c"},
		{Node: "d", Operations: 1, Seconds: 1},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("lag %+v, want %+v", got, want)
	}
}
