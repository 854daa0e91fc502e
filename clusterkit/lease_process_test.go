package clusterkit_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
)

// healthDetailed is p's GET /health/detailed, whatever its status.
func healthDetailed(addr string) (*clusterkit.Health, error) {
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + addr + "/health/detailed")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var h clusterkit.Health
	return &h, json.NewDecoder(resp.Body).Decode(&h)
}

// A follower paused past failover wakes up with the map it had: its
// partitions have moved on without it. Raft's last contact turns fresh at
// its first heartbeat, before the missed entries reach its map; the node
// must not call its map current (LeaderContact, map_current) until it has
// caught up with the map the others moved to.
func TestMapIsNotCurrentAfterAPauseUntilCaughtUp(t *testing.T) {
	victim, live := threeProcessesAndAFollower(t)
	cktest.Eventually(t, 10*time.Second, "map current on the victim", func() error {
		h, err := healthDetailed(victim.http)
		if err != nil {
			return err
		}
		if h.MapCurrent == nil || !*h.MapCurrent {
			return fmt.Errorf("%s: map_current %v", victim.id, h.MapCurrent)
		}
		return nil
	})

	if err := victim.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = victim.cmd.Process.Signal(syscall.SIGCONT) }()
	var moved uint64
	cktest.Eventually(t, 20*time.Second, "failover of the paused node's partitions", func() error {
		info, err := clusterInfo(live[0].http)
		if err != nil {
			return err
		}
		for _, part := range info.Partitions {
			if part.PrimaryNode == victim.id {
				return fmt.Errorf("%s still led by the paused %s", part.ID, victim.id)
			}
		}
		moved = info.Version
		return nil
	})

	if err := victim.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	var samples, stale int
	current := time.Duration(-1)
	for time.Since(resumed) < 3*time.Second {
		h, err := healthDetailed(victim.http)
		if err != nil {
			continue
		}
		samples++
		if h.MapCurrent != nil && *h.MapCurrent {
			if h.Version < moved {
				t.Fatalf("%s calls map version %d current %v after SIGCONT; the others moved to %d while it was paused",
					victim.id, h.Version, time.Since(resumed), moved)
			}
			if current < 0 {
				current = time.Since(resumed)
			}
		} else {
			stale++
		}
	}
	if current < 0 {
		t.Fatalf("%s never called its map current in 3s after SIGCONT (%d samples)", victim.id, samples)
	}
	t.Logf("map current %v after SIGCONT; %d of %d samples before that not current", current, stale, samples)
}

// threeProcessesAndAFollower forms a cluster of three quickstart processes
// and returns one follower of the raft leader and the other two.
func threeProcessesAndAFollower(t *testing.T) (victim *proc, live []*proc) {
	t.Helper()
	procs := startFormation(t, buildQuickstart(t), t.TempDir(), 3, 3)
	cktest.Eventually(t, 30*time.Second, "one cluster", func() error {
		_, err := oneCluster(procs)
		return err
	})
	info, err := clusterInfo(procs[0].http)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if victim == nil && p.id != info.LeaderID {
			victim = p
		} else {
			live = append(live, p)
		}
	}
	return victim, live
}
