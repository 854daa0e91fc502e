package faults

import (
	"slices"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"clusterkit.dev/clusterkit"
)

const ms = int64(time.Millisecond)

func TestLinearizabilityChecker(t *testing.T) {
	base := []Op{
		{Client: 0, Kind: Write, Key: "k", Value: "a", Call: 0, Return: 10 * ms, Result: OK},
		{Client: 1, Kind: Write, Key: "k", Value: "b", Call: 20 * ms, Return: 30 * ms, Result: OK},
	}
	cases := []struct {
		name string
		ops  []Op
		want porcupine.CheckResult
	}{
		{"fresh read", append(slices.Clone(base), Op{Client: 2, Kind: Read, Key: "k", Value: "b", Call: 40 * ms, Return: 50 * ms, Result: OK}), porcupine.Ok},
		{"stale read", append(slices.Clone(base), Op{Client: 2, Kind: Read, Key: "k", Value: "a", Call: 40 * ms, Return: 50 * ms, Result: OK}), porcupine.Illegal},
		{"lost write read as absent", append(slices.Clone(base), Op{Client: 2, Kind: Read, Key: "k", Value: "", Call: 40 * ms, Return: 50 * ms, Result: OK}), porcupine.Illegal},
		{"maybe write seen later", append(slices.Clone(base),
			Op{Client: 3, Kind: Write, Key: "k", Value: "c", Call: 35 * ms, Return: 36 * ms, Result: Maybe},
			Op{Client: 2, Kind: Read, Key: "k", Value: "c", Call: 400 * ms, Return: 410 * ms, Result: OK}), porcupine.Ok},
		{"maybe write seen before its call", append(slices.Clone(base),
			Op{Client: 2, Kind: Read, Key: "k", Value: "c", Call: 40 * ms, Return: 41 * ms, Result: OK},
			Op{Client: 3, Kind: Write, Key: "k", Value: "c", Call: 50 * ms, Return: 60 * ms, Result: Maybe}), porcupine.Illegal},
		{"failed write never applies", append(slices.Clone(base),
			Op{Client: 3, Kind: Write, Key: "k", Value: "c", Call: 35 * ms, Return: 36 * ms, Result: Failed},
			Op{Client: 2, Kind: Read, Key: "k", Value: "c", Call: 40 * ms, Return: 50 * ms, Result: OK}), porcupine.Illegal},
		{"failed read ignored", append(slices.Clone(base), Op{Client: 2, Kind: Read, Key: "k", Value: "zzz", Call: 40 * ms, Return: 50 * ms, Result: Failed}), porcupine.Ok},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := CheckLinearizable(c.ops, 10*time.Second, "")
			if err != nil || got != c.want {
				t.Fatalf("got %v, %v; want %v", got, err, c.want)
			}
		})
	}
}

func TestLostWrites(t *testing.T) {
	ops := []Op{
		{Kind: Write, Key: "k", Value: "a", Call: 0, Return: 10, Result: OK},
		{Kind: Write, Key: "k", Value: "b", Call: 20, Return: 30, Result: OK},
		{Kind: Write, Key: "j", Value: "x", Call: 0, Return: 10, Result: OK},
		{Kind: Write, Key: "j", Value: "y", Call: 5, Return: 15, Result: OK}, // overlaps x: either may win
	}
	if lost := LostWrites(ops, map[string]string{"k": "b", "j": "x"}); len(lost) != 0 {
		t.Fatalf("nothing lost, got %+v", lost)
	}
	lost := LostWrites(ops, map[string]string{"k": "a", "j": ""})
	var values []string
	for _, op := range lost {
		values = append(values, op.Value)
	}
	slices.Sort(values)
	if !slices.Equal(values, []string{"b", "x", "y"}) {
		t.Fatalf("lost %v, want [b x y]", values)
	}
}

func TestAvailability(t *testing.T) {
	s := int64(time.Second)
	ops := []Op{
		{Kind: Write, Key: "a", Return: 1 * s, Result: OK},
		{Kind: Write, Key: "a", Return: 5 * s, Result: OK},
		{Kind: Write, Key: "b", Return: 2 * s, Result: OK},
		{Kind: Write, Key: "b", Return: 3 * s, Result: Maybe},
		{Kind: Read, Key: "b", Return: 4 * s, Result: OK},
	}
	all, touched := Availability(ops, 0, 6*s, nil, 16)
	if all.Writes != 3*time.Second || all.Reads != 4*time.Second || touched != all {
		t.Fatalf("all %+v touched %+v, want writes 3s reads 4s", all, touched)
	}
}

func TestScheduleIsSeeded(t *testing.T) {
	a, b := Schedule(7, 25, Kinds), Schedule(7, 25, Kinds)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different schedules: %v, %v", a, b)
	}
	for _, k := range Kinds {
		if !slices.Contains(a[:len(Kinds)], k) {
			t.Fatalf("the first %d faults miss %s: %v", len(Kinds), k, a)
		}
	}
	if slices.Equal(a, Schedule(8, 25, Kinds)) {
		t.Fatal("seeds 7 and 8 drew the same schedule")
	}
}

func TestFirstViolation(t *testing.T) {
	ops := []Op{
		{Kind: Write, Key: "k", Value: "a", Call: 0, Return: 10 * ms, Result: OK},
		{Kind: Read, Key: "k", Value: "a", Call: 20 * ms, Return: 30 * ms, Result: OK},
		{Kind: Write, Key: "k", Value: "b", Call: 40 * ms, Return: 50 * ms, Result: OK},
		{Kind: Read, Key: "k", Value: "a", Call: 60 * ms, Return: 70 * ms, Result: OK}, // stale
		{Kind: Read, Key: "k", Value: "b", Call: 80 * ms, Return: 90 * ms, Result: OK},
		{Kind: Write, Key: "j", Value: "x", Call: 0, Return: 10 * ms, Result: OK},
	}
	prefix := FirstViolation(ops, "k", 10*time.Second)
	if len(prefix) != 4 || prefix[3].Value != "a" || prefix[3].Kind != Read {
		t.Fatalf("first violation %+v, want the stale read, 4th", prefix)
	}
	if FirstViolation(ops, "j", 10*time.Second) != nil {
		t.Fatal("a linearizable key has a violation")
	}
}

func TestUnpromisedCountsFailuresWithoutAMajority(t *testing.T) {
	key := "k00"
	p := clusterkit.PartitionIndex(key, 16)
	h := &History{Partitions: 16, End: 100 * ms, Faults: []FaultRecord{{Start: 10 * ms, Heal: 20 * ms, NoQuorum: []int{p}}}, Ops: []Op{
		{Key: key, Call: 12 * ms, Result: Failed}, // during, no quorum: unpromised
		{Key: key, Call: 13 * ms, Result: Maybe},  // the same
		{Key: key, Call: 14 * ms, Result: OK},     // succeeded: not counted
		{Key: key, Call: 25 * ms, Result: Failed}, // after the heal: promised
	}}
	if got := Unpromised(h); got != 2 {
		t.Fatalf("Unpromised = %d, want 2", got)
	}
}
