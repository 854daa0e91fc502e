package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
	"clusterkit.dev/clusterkit/client"
)

func TestRoutesLikeEveryServer(t *testing.T) {
	c := cktest.New(t, 3)
	c.WaitConverged()
	cl := newClient(t, seeds(c))

	ref := c.Member(0).CK
	topo := cl.Topology()
	if topo.Version != ref.Version() || topo.PartitionCount != ref.PartitionCount() ||
		topo.ReplicationFactor != ref.ReplicationFactor() || len(topo.Nodes) != 3 {
		t.Fatalf("topology: version %d, %d partitions, RF %d, %d nodes; servers: version %d, %d partitions, RF %d",
			topo.Version, topo.PartitionCount, topo.ReplicationFactor, len(topo.Nodes), ref.Version(), ref.PartitionCount(), ref.ReplicationFactor())
	}
	assertRoutesMatch(t, c, cl, 10000)
}

// assertRoutesMatch checks that the client routes keys exactly as every
// running member: same partition, epoch, primary, replicas, addresses.
func assertRoutesMatch(t *testing.T, c *cktest.Cluster, cl *client.Client, keys int) {
	t.Helper()
	for i := 0; i < keys; i++ {
		key := "key-" + strconv.Itoa(i)
		r, err := cl.Route(key)
		if err != nil {
			t.Fatalf("Route(%q): %v", key, err)
		}
		for _, m := range c.Running() {
			p, err := m.CK.GetPartition(key)
			if err != nil {
				t.Fatalf("%s GetPartition(%q): %v", m.ID, key, err)
			}
			primary := m.CK.GetPrimary(p)
			if r.Partition != p.Index || r.PartitionID != p.ID || r.Epoch != p.Epoch || r.MapVersion != p.Version {
				t.Fatalf("key %q: client routes to %s epoch %d at map %d, %s says %s epoch %d at map %d",
					key, r.PartitionID, r.Epoch, r.MapVersion, m.ID, p.ID, p.Epoch, p.Version)
			}
			if r.Primary == nil || r.Primary.ID != primary.ID || r.Primary.IP != primary.IP {
				t.Fatalf("key %q: client primary %v, %s says %s at %s", key, r.Primary, m.ID, primary.ID, primary.IP)
			}
			if got, want := ids(r.Replicas), ids(m.CK.GetReplicas(p)); !slices.Equal(got, want) {
				t.Fatalf("key %q: client replicas %v, %s says %v", key, got, m.ID, want)
			}
			if got, want := ids(r.Joining), p.JoiningNodes; !slices.Equal(got, want) {
				t.Fatalf("key %q: client joining %v, %s says %v", key, got, m.ID, want)
			}
			wantRead := ids(m.CK.GetNodes(p))
			if got := ids(r.ReadOwners()); !slices.Equal(got, wantRead) {
				t.Fatalf("key %q: read owners %v, want %v", key, got, wantRead)
			}
			if got, want := ids(r.WriteOwners()), append(wantRead, p.JoiningNodes...); !slices.Equal(got, want) {
				t.Fatalf("key %q: write owners %v, want %v", key, got, want)
			}
		}
	}
}

func TestWatchFollowsChangesAcrossNodes(t *testing.T) {
	c := cktest.New(t, 3)
	c.WaitConverged()
	// One seed and a watch that would not renew before the test ends: the
	// client must learn of changes from the long-poll wake-up, and find
	// the other nodes by itself when its seed dies.
	cl := newClient(t, []string{c.Member(0).HTTPAddr()}, client.WithWatchWait(time.Minute))

	c.Add()
	c.WaitConverged()
	waitVersion(t, cl, c.Member(1).CK.Version())
	assertRoutesMatch(t, c, cl, 1000)

	c.Stop(0)
	c.Add()
	c.WaitConverged()
	waitVersion(t, cl, c.Member(1).CK.Version())
	assertRoutesMatch(t, c, cl, 1000)
}

// waitVersion fails the test unless the client reaches version v within 5
// seconds, far less than the watch's renewal period.
func waitVersion(t *testing.T, cl *client.Client, v uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cl.WaitForVersion(ctx, v); err != nil {
		t.Fatalf("client did not follow the servers to map version %d: %v", v, err)
	}
}

func TestSeedFailover(t *testing.T) {
	c := cktest.New(t, 1)
	c.WaitConverged()
	dead := deadAddr(t)

	cl := newClient(t, []string{dead, c.Member(0).HTTPAddr()})
	if cl.Version() != c.Member(0).CK.Version() {
		t.Fatalf("client map version %d, server %d", cl.Version(), c.Member(0).CK.Version())
	}

	start := time.Now()
	_, err := client.New(context.Background(), []string{dead, "http://" + deadAddr(t)}, client.WithStartTimeout(500*time.Millisecond))
	if err == nil {
		t.Fatal("New with only dead seeds succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("New with dead seeds took %v, want about the 500ms start timeout", d)
	}
	if !strings.Contains(err.Error(), dead) {
		t.Fatalf("error does not name the seeds it tried: %v", err)
	}
	if _, err := client.New(context.Background(), []string{" ", ""}); !errors.Is(err, client.ErrNoSeeds) {
		t.Fatalf("New without seeds: %v, want ErrNoSeeds", err)
	}
}

func TestCloseStopsTheWatch(t *testing.T) {
	c := cktest.New(t, 1)
	c.WaitConverged()
	cl, err := client.New(context.Background(), seeds(c))
	if err != nil {
		t.Fatal(err)
	}
	// Let the watch settle into a long-poll.
	time.Sleep(100 * time.Millisecond)
	if n := clientGoroutines(); n == 0 {
		t.Fatal("no goroutine of the client is running before Close")
	}
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-cl.WatchDone():
	default:
		t.Fatal("Close returned before the watch goroutine")
	}
	c.Eventually("no client goroutine left", func() error {
		if n := clientGoroutines(); n > 0 {
			return fmt.Errorf("%d goroutines of the client still running", n)
		}
		return nil
	})
	if _, err := cl.Route("k"); err != nil {
		t.Fatalf("Route after Close: %v", err)
	}
	if err := cl.Refresh(context.Background()); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Refresh after Close: %v, want ErrClosed", err)
	}
	_ = cl.Close()
}

// clientGoroutines counts goroutines running code of this package or
// reading one of its connections.
func clientGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "clusterkit/client.(*Client)") || strings.Contains(g, "net/http.(*persistConn)") {
			n++
		}
	}
	return n
}

func TestWithRetryRefreshesOnce(t *testing.T) {
	c := cktest.New(t, 3, cktest.WithInit(func(_ *cktest.Member, ck *clusterkit.ClusterKit) {
		ck.Echo().GET("/test/primary", primaryOnly(ck))
	}))
	c.WaitConverged()
	// Without the watch the client keeps its first map until a node
	// tells it about a newer one.
	cl := newClient(t, seeds(c), client.WithoutWatch())
	before := cl.Version()

	c.Add(func(m *cktest.Member) {
		m.Init = func(ck *clusterkit.ClusterKit) { ck.Echo().GET("/test/primary", primaryOnly(ck)) }
	})
	c.WaitConverged()
	after := c.Member(0).CK.Version()
	if cl.Version() != before {
		t.Fatalf("client without watch moved from map %d to %d by itself", before, cl.Version())
	}

	retried := 0
	for i := 0; i < 200; i++ {
		key := "key-" + strconv.Itoa(i)
		calls := 0
		err := cl.WithRetry(context.Background(), key, func(r client.Route) error {
			calls++
			return get(cl, r, r.Primary, key)
		})
		if err != nil {
			t.Fatalf("key %q: %v after %d calls", key, err, calls)
		}
		if calls > 2 {
			t.Fatalf("key %q: fn called %d times, want at most 2", key, calls)
		}
		if calls == 2 {
			retried++
		}
	}
	if retried == 0 {
		t.Fatal("no key needed a retry although the map changed: the test proves nothing")
	}
	if cl.Version() < after {
		t.Fatalf("client at map %d after the retries, servers at %d", cl.Version(), after)
	}

	// A node with the same map refusing the key: nothing to learn, no retry.
	key := "key-0"
	calls := 0
	err := cl.WithRetry(context.Background(), key, func(r client.Route) error {
		calls++
		return get(cl, r, &r.Replicas[0], key)
	})
	var noe *client.NotOwnerError
	if !errors.As(err, &noe) || calls != 1 {
		t.Fatalf("request to a replica: err %v after %d calls, want a NotOwnerError after 1", err, calls)
	}
	if noe.MapVersion != cl.Version() || noe.Body.Primary == "" || client.StatusCode(err) != clusterkit.StatusNotOwner {
		t.Fatalf("NotOwnerError %+v: want map version %d and the primary", noe, cl.Version())
	}
}

// primaryOnly answers 200 when this node is the primary of ?key= and 421
// otherwise, like a service that only writes on the primary.
func primaryOnly(ck *clusterkit.ClusterKit) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set(clusterkit.HeaderMapVersion, strconv.FormatUint(ck.Version(), 10))
		p, err := ck.GetPartition(c.QueryParam("key"))
		if err != nil {
			return err
		}
		if !ck.IsPrimary(p) {
			body := clusterkit.NotOwnerBody{Error: "not the primary", MapVersion: ck.Version(), Partition: p.Index}
			if pr := ck.GetPrimary(p); pr != nil {
				body.Primary = pr.ID
			}
			return c.JSON(clusterkit.StatusNotOwner, body)
		}
		return c.String(http.StatusOK, "ok")
	}
}

func get(cl *client.Client, r client.Route, n *clusterkit.Node, key string) error {
	req, err := http.NewRequest(http.MethodGet, "http://"+n.IP+"/test/primary?key="+key, nil)
	if err != nil {
		return err
	}
	client.SetMapVersion(req, r)
	resp, err := cl.HTTPClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return client.Check(resp)
}

func newClient(t testing.TB, seeds []string, opts ...client.Option) *client.Client {
	t.Helper()
	cl, err := client.New(context.Background(), seeds, opts...)
	if err != nil {
		t.Fatalf("client.New(%v): %v", seeds, err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

func seeds(c *cktest.Cluster) []string {
	var out []string
	for _, m := range c.Running() {
		out = append(out, m.HTTPAddr())
	}
	return out
}

func ids(nodes []clusterkit.Node) []string {
	out := []string{}
	for _, n := range nodes {
		out = append(out, n.ID)
	}
	return out
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
