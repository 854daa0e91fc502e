package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
	ckclient "clusterkit.dev/clusterkit/client"
	"clusterkit.dev/services/kv-async/client"
)

// writeKeys writes keys key-<from>..key-<to-1> with value prefix+index
// through the client, from 8 goroutines, and fails the test on any error.
func writeKeys(t testing.TB, c *client.Client, from, to int, prefix string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, to-from)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := from + w; i < to; i += 8 {
				if err := c.Set(context.Background(), key(i), prefix+strconv.Itoa(i)); err != nil {
					errs <- fmt.Errorf("set %s: %w", key(i), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func key(i int) string { return "key-" + strconv.Itoa(i) }

func TestWriteThenReadFromEveryOwner(t *testing.T) {
	// Both sync policies: acknowledged once fsynced, and (the node's
	// default) once written, with fsyncs and shipping in the background.
	for _, cfg := range []Config{{}, {SyncWindow: 20 * time.Millisecond, ReplicationInterval: 10 * time.Millisecond}} {
		t.Run(fmt.Sprintf("SyncWindow %v", cfg.SyncWindow), func(t *testing.T) { testWriteThenReadFromEveryOwner(t, cfg) })
	}
}

func testWriteThenReadFromEveryOwner(t *testing.T, cfg Config) {
	tc := newCluster(t, 3, cfg)
	c := tc.client()
	const n = 1000
	writeKeys(t, c, 0, n, "v")
	for i := 0; i < n; i++ {
		if got, err := c.Get(context.Background(), key(i)); err != nil || got != "v"+strconv.Itoa(i) {
			t.Fatalf("get %s from the primary: %q, %v", key(i), got, err)
		}
	}
	tc.waitReplicated()
	checkEveryOwner(t, tc, c, n, func(i int) string { return "v" + strconv.Itoa(i) })
	// Each node, primary of some partitions, has the failure series of the
	// peers it ships to, at 0 unless a request failed.
	for i := range 3 {
		for j := range 3 {
			sample := `kvasync_replication_batches_total{peer="` + tc.Member(j).ID + `",result="error"}`
			if i != j && !hasSample(t, tc.Member(i), sample) {
				t.Errorf("%s does not export %s", tc.Member(i).ID, sample)
			}
		}
	}

	// Overwrites and deletes replicate like writes.
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		if err := c.Set(ctx, key(i), "w"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
		if err := c.Delete(ctx, key(n-1-i)); err != nil {
			t.Fatal(err)
		}
	}
	tc.waitReplicated()
	checkEveryOwner(t, tc, c, n, func(i int) string {
		switch {
		case i < 100:
			return "w" + strconv.Itoa(i)
		case i >= n-100:
			return ""
		}
		return "v" + strconv.Itoa(i)
	})
	if _, err := c.Get(ctx, key(n-1)); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("deleted key: %v, want ErrNotFound", err)
	}
	if err := c.Delete(ctx, key(n-1)); err != nil {
		t.Fatalf("deleting a deleted key: %v", err)
	}
}

func TestAddNodeMigratesPartitions(t *testing.T) {
	// Replicas lag their primaries by at least 200ms (the primaries wait
	// that long before shipping), so that when a primary moves it always
	// has writes it has not shipped yet.
	tc := newCluster(t, 3, Config{DropDelay: 300 * time.Millisecond, ReplicationInterval: 200 * time.Millisecond})
	c := tc.client()
	const n = 1000
	writeKeys(t, c, 0, n, "v")

	// Keep writing while the node joins and partitions move: every write
	// acknowledged during the moves must survive them, and none may fail:
	// a moving primary hands over with a map change, and the client
	// retries a write refused with 421 on the new primary.
	const maxFailedWrites = 0
	var (
		wg      sync.WaitGroup
		stop    = make(chan struct{})
		written = n
		failed  []error
		tried   int
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ; ; tried++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := c.Set(context.Background(), key(written), "v"+strconv.Itoa(written)); err != nil {
				// Tried again with the same key and value: a set is
				// idempotent, so the keys checked below stay 0..written-1.
				failed = append(failed, err)
				continue
			}
			written++
		}
	}()
	added := tc.Add()
	tc.WaitConverged()
	close(stop)
	wg.Wait()
	t.Logf("%d writes during the join, %d failed", tried, len(failed))
	if len(failed) > maxFailedWrites {
		t.Fatalf("%d of %d writes failed during the join, more than %d; first: %v", len(failed), tried, maxFailedWrites, failed[0])
	}
	if written < n+10 {
		t.Fatalf("only %d writes during the join: the test proves little", written-n)
	}
	t.Logf("%d writes while %s joined", written-n, added.ID)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.SDK().WaitForVersion(ctx, added.CK.Version()); err != nil {
		t.Fatal(err)
	}
	tc.waitReplicated()
	owned := 0
	for _, p := range added.CK.Partitions() {
		if p.PrimaryNode == added.ID || slices.Contains(p.ReplicaNodes, added.ID) {
			owned++
		}
	}
	if owned == 0 {
		t.Fatalf("%s owns no partition after joining", added.ID)
	}
	checkEveryOwner(t, tc, c, written, func(i int) string { return "v" + strconv.Itoa(i) })
	if got := metricValue(t, added, `kvasync_migrated_partitions_total{kind="copy",result="ok"}`); got < 1 {
		t.Fatalf("%s copied %v partitions, owns %d", added.ID, got, owned)
	}
	// Balancing primaries made the new node primary of some partitions,
	// after it was a ready replica: it pulled what the previous primary had
	// not yet shipped (and, demoted, would never ship), so the writes above
	// were all kept.
	primaries := 0
	for _, p := range added.CK.Partitions() {
		if p.PrimaryNode == added.ID {
			primaries++
		}
	}
	if got := metricValue(t, added, `kvasync_migrated_partitions_total{kind="catchup",result="ok"}`); primaries == 0 || got < 1 {
		t.Fatalf("%s is primary of %d partitions and caught up %v times", added.ID, primaries, got)
	}

	// The nodes that lost partitions delete them after DropDelay.
	tc.Eventually("lost partitions dropped", func() error {
		for _, m := range tc.Running() {
			parts, err := tc.server(m.Index).Store().Partitions()
			if err != nil {
				return err
			}
			for _, p := range parts {
				if tc.server(m.Index).role(tc.server(m.Index).partition(p)) == clusterkit.RoleNone {
					return fmt.Errorf("%s still holds partition %d, which it does not own", m.ID, p)
				}
			}
		}
		return nil
	})
}

func TestKillAndRestartNode(t *testing.T) {
	tc := newCluster(t, 3, Config{})
	c := tc.client()
	ctx := context.Background()
	const n = 1000
	writeKeys(t, c, 0, n, "v")
	// What kv-async guarantees across the loss of a node: every write that
	// was replicated (lag 0) before the node died.
	tc.waitReplicated()

	const victim = 1
	victimID := tc.Member(victim).ID
	tc.kill(victim)

	// Every key reads through the client at once: from a replica while the
	// dead node's partitions have no live primary, then from the promoted
	// replicas.
	for i := 0; i < n; i++ {
		if got, err := c.Get(ctx, key(i)); err != nil || got != "v"+strconv.Itoa(i) {
			t.Fatalf("get %s with %s dead: %q, %v", key(i), victimID, got, err)
		}
	}

	// Failover (a library feature): replicas of the dead node's partitions
	// are promoted, and every key can be written again.
	live := tc.Member(0)
	tc.Eventually("failover of the dead node's partitions", func() error {
		for _, p := range live.CK.Partitions() {
			if p.PrimaryNode == victimID {
				return fmt.Errorf("%s still has primary %s", p.ID, victimID)
			}
		}
		return nil
	})
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.SDK().WaitForVersion(wctx, live.CK.Version()); err != nil {
		t.Fatal(err)
	}
	writeKeys(t, c, 0, n, "w")
	checkOwners(t, tc, c, n, func(node string) bool { return node != victimID }, func(i int) string { return "w" + strconv.Itoa(i) })

	// Restarted from its data dir, the node has every key it held...
	tc.Start(victim)
	st := tc.server(victim).Store()
	for i := 0; i < n; i++ {
		rec, found, err := st.Get(clusterkit.PartitionIndex(key(i), live.CK.PartitionCount()), key(i))
		if err != nil || !found || (string(rec.Value) != "v"+strconv.Itoa(i) && string(rec.Value) != "w"+strconv.Itoa(i)) {
			t.Fatalf("%s after restart: %s = %q (found %v, %v)", victimID, key(i), rec.Value, found, err)
		}
	}
	// ...and catches up on what it missed.
	tc.WaitConverged()
	tc.waitReplicated()
	owns := 0
	for _, p := range tc.Member(victim).CK.Partitions() {
		if slices.Contains(append([]string{p.PrimaryNode}, p.ReplicaNodes...), victimID) {
			owns++
		}
	}
	if owns == 0 {
		t.Fatalf("%s owns no partition after its restart", victimID)
	}
	checkEveryOwner(t, tc, c, n, func(i int) string { return "w" + strconv.Itoa(i) })
}

// checkEveryOwner checks that every key reads the wanted value from every
// ready owner of its partition in the client's map (want returns "" for a
// key that must be absent), retrying while the map settles.
func checkEveryOwner(t testing.TB, tc *testCluster, c *client.Client, n int, want func(i int) string) {
	t.Helper()
	checkOwners(t, tc, c, n, func(string) bool { return true }, want)
}

// checkOwners is checkEveryOwner restricted to the nodes keep accepts.
func checkOwners(t testing.TB, tc *testCluster, c *client.Client, n int, keep func(node string) bool, want func(i int) string) {
	t.Helper()
	ctx := context.Background()
	tc.Eventually("every owner has every key", func() error {
		for i := 0; i < n; i++ {
			r, err := c.SDK().Route(key(i))
			if err != nil && !errors.Is(err, ckclient.ErrNoPrimary) {
				return fmt.Errorf("route %s: %v", key(i), err)
			}
			for _, node := range r.ReadOwners() {
				if !keep(node.ID) {
					continue
				}
				got, err := c.GetFrom(ctx, node, key(i))
				switch w := want(i); {
				case w == "" && !errors.Is(err, client.ErrNotFound):
					return fmt.Errorf("%s on %s: got %q, %v; want not found", key(i), node.ID, got, err)
				case w != "" && (err != nil || got != w):
					return fmt.Errorf("%s on %s: got %q, %v; want %q", key(i), node.ID, got, err, w)
				}
			}
		}
		return nil
	})
}

// hasSample reports whether member m's /metrics has sample, whatever its
// value.
func hasSample(t testing.TB, m *cktest.Member, sample string) bool {
	t.Helper()
	resp, err := http.Get(m.URL("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, sample+" ") {
			return true
		}
	}
	return false
}

// metricValue returns the value of one sample of member m's /metrics.
func metricValue(t testing.TB, m *cktest.Member, sample string) float64 {
	t.Helper()
	resp, err := http.Get(m.URL("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", line, err)
			}
			return f
		}
	}
	return 0
}
