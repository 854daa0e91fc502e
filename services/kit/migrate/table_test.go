package migrate

import (
	"context"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
)

// TestTableWaitSeesTheChange checks that Wait returns as soon as the state
// it waits for is set, false at its timeout, and that every Set raises the
// partition's generation.
func TestTableWaitSeesTheChange(t *testing.T) {
	tb := NewTable()
	if st := tb.Get(7); st != (State{}) || st.Owned() {
		t.Fatalf("an unseen partition: %+v", st)
	}
	primary := func(st State) bool { return st.Filled && st.Role == clusterkit.RolePrimary }
	if tb.Wait(context.Background(), 7, 50*time.Millisecond, primary) {
		t.Fatal("Wait reported a state never set")
	}
	if g := tb.Set(7, State{Role: clusterkit.RolePrimary}); g != 1 {
		t.Fatalf("first Set: generation %d, want 1", g)
	}
	done := make(chan bool)
	go func() { done <- tb.Wait(context.Background(), 7, 10*time.Second, primary) }()
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	if g := tb.Set(7, State{Role: clusterkit.RolePrimary, Filled: true, Gen: 99}); g != 2 {
		t.Fatalf("second Set: generation %d, want 2 (Gen is the table's)", g)
	}
	if !<-done {
		t.Fatal("Wait missed the change")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Wait returned %v after the change", d)
	}
	if st := tb.Get(7); !st.Owned() || st.Gen != 2 {
		t.Fatalf("after the change: %+v", st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if tb.Wait(ctx, 3, 10*time.Second, primary) {
		t.Fatal("Wait with a cancelled context reported true")
	}
}

func TestOwners(t *testing.T) {
	p := &clusterkit.Partition{PrimaryNode: "a", ReplicaNodes: []string{"b"}, JoiningNodes: []string{"c"}}
	for id, want := range map[string][2]bool{"a": {true, true}, "b": {true, true}, "c": {false, true}, "d": {false, false}} {
		if got := [2]bool{ReadOwner(p, id), Owner(p, id)}; got != want {
			t.Errorf("%s: ReadOwner, Owner = %v, want %v", id, got, want)
		}
	}
}
