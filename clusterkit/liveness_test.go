package clusterkit

import (
	"testing"
	"time"

	"clusterkit.dev/clusterkit/internal/state"
)

// A previous leader that asked to join after its last contact is back: a
// new leader does not count its silence from before.
func TestDetectorPreviousLeaderHeardFromAgain(t *testing.T) {
	cfg := LocalConfig()
	t0 := time.Now()
	d := newDetector(func() {})
	d.reset("node-1", t0)
	if got := d.status("node-1", t0.Add(cfg.DeadTimeout), &cfg); got != state.StatusDead {
		t.Fatalf("silent previous leader: %s, want dead", got)
	}
	d.heard("node-1", t0.Add(time.Millisecond))
	if got := d.status("node-1", t0.Add(cfg.DeadTimeout), &cfg); got != state.StatusAlive {
		t.Fatalf("previous leader that asked to join: %s, want alive", got)
	}
	// A later leadership: heard before the leader's last contact counts no more.
	d.reset("node-1", t0.Add(time.Second))
	if got := d.status("node-1", t0.Add(time.Second+cfg.DeadTimeout), &cfg); got != state.StatusDead {
		t.Fatalf("previous leader silent since its last contact: %s, want dead", got)
	}
	// Heard before this leadership began, after its last contact.
	d.heard("node-1", t0.Add(2*time.Second))
	d.reset("node-1", t0.Add(time.Second))
	if got := d.status("node-1", t0.Add(time.Second+cfg.DeadTimeout), &cfg); got != state.StatusAlive {
		t.Fatalf("previous leader heard from before the reset: %s, want alive", got)
	}
}
