package clusterkit_test

import (
	"context"
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	"clusterkit.dev/clusterkit/cktest"
	"clusterkit.dev/clusterkit/client"
)

// Three nodes as processes; the client's watch long-polls one of them,
// which is then stopped with SIGSTOP: its kernel keeps accepting
// connections, nothing answers. The client must follow the failover on the
// live nodes within a few seconds (its watch pings, 1s, plus its fetch
// timeout, 2s), not the one-minute long-poll, and route keys away from the
// stopped node; a new client given the stopped node as its first seed must
// start within its fetch timeout.
func TestClientFollowsTheClusterPastASIGSTOPpedNode(t *testing.T) {
	victim, live := threeProcessesAndAFollower(t)
	// The victim is the first seed: it answers New, and the watch
	// long-polls it.
	cl, err := client.New(context.Background(), []string{victim.http, live[0].http, live[1].http},
		client.WithWatchWait(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	time.Sleep(300 * time.Millisecond) // let the long-poll start waiting

	if err := victim.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	defer func() { _ = victim.cmd.Process.Signal(syscall.SIGCONT) }()

	// Until the live nodes have failed the victim's partitions over and
	// the client has their map: record when each map version is first
	// served by a live node and when the client first has it.
	seen := map[uint64]time.Time{}
	lag := map[uint64]time.Duration{}
	var final uint64
	cktest.Eventually(t, 40*time.Second, "failover followed by the client", func() error {
		var notYet error
		for _, p := range live {
			info, err := clusterInfo(p.http)
			if err != nil {
				return err
			}
			if seen[info.Version].IsZero() {
				seen[info.Version] = time.Now()
			}
			final = max(final, info.Version)
			for _, part := range info.Partitions {
				if part.PrimaryNode == victim.id && notYet == nil {
					notYet = fmt.Errorf("%s: %s still led by the stopped %s", p.id, part.ID, victim.id)
				}
			}
		}
		cv := cl.Version()
		for v, at := range seen {
			if _, done := lag[v]; !done && cv >= v {
				lag[v] = time.Since(at)
			}
		}
		if notYet != nil {
			return notYet
		}
		if cv < final {
			return fmt.Errorf("client at map version %d, live nodes at %d", cv, final)
		}
		return nil
	})
	var worst time.Duration
	for _, l := range lag {
		worst = max(worst, l)
	}
	t.Logf("SIGSTOP to failover followed by the client: %v; %d map versions, worst delay to the client %v",
		time.Since(stopped), len(lag), worst)
	// The sampling itself takes a few milliseconds per round.
	if bound := 4500 * time.Millisecond; worst > bound {
		t.Fatalf("client saw a map version %v after the live nodes, want at most %v with its watch node stopped", worst, bound)
	}
	for i := 0; i < 1000; i++ {
		r, err := cl.Route("key-" + strconv.Itoa(i))
		if err != nil {
			t.Fatalf("Route after failover: %v", err)
		}
		if r.Primary.ID == victim.id {
			t.Fatalf("key-%d still routed to the stopped %s at map version %d", i, victim.id, r.MapVersion)
		}
	}

	start := time.Now()
	cl2, err := client.New(context.Background(), []string{victim.http, live[0].http})
	if err != nil {
		t.Fatalf("New with the stopped node as first seed: %v", err)
	}
	defer cl2.Close()
	took := time.Since(start)
	t.Logf("New with the stopped node as first seed: %v", took)
	if took > 3500*time.Millisecond {
		t.Fatalf("New with the stopped node as first seed took %v, want at most the 2s fetch timeout and some slack", took)
	}
	if cl2.Version() < final {
		t.Fatalf("new client at map version %d, live nodes at %d", cl2.Version(), final)
	}
}
