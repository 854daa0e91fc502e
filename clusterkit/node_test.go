package clusterkit

import (
	"testing"

	"clusterkit.dev/clusterkit/internal/state"
)

// A Node's State is the replicated status converted as is (nodeFromState),
// so the wire's node states must spell the replicated state's statuses.
func TestNodeStatesAreTheReplicatedStatuses(t *testing.T) {
	for _, tc := range []struct {
		status state.NodeStatus
		want   NodeState
	}{
		{state.StatusAlive, NodeAlive},
		{state.StatusSuspect, NodeSuspect},
		{state.StatusDead, NodeDead},
	} {
		if got := nodeFromState(&state.Node{ID: "a", Status: tc.status}).State; got != tc.want {
			t.Errorf("status %q: node state %q, want %q", tc.status, got, tc.want)
		}
	}
}
