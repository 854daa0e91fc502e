package server

import (
	"context"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
	"clusterkit.dev/services/kit/kittest"
	"clusterkit.dev/services/kit/migrate"
	"clusterkit.dev/services/kv-sync/client"
)

// testCluster is the kit's test cluster (kittest.Cluster) with a Server on
// every member.
type testCluster struct {
	*kittest.Cluster[*Server, versionJSON]
}

// answer is a decoded KV answer.
type answer = kittest.Answer[versionJSON]

type versionJSON struct {
	Counter uint64 `json:"counter"`
	Writer  uint64 `json:"writer"`
}

// newTestCluster starts n nodes, each with a Server configured by cfg (its
// DataDir is the member's), and waits until the map is settled and every
// owner holds its partitions.
func newTestCluster(t testing.TB, n int, cfg Config, opts ...cktest.Option) *testCluster {
	t.Helper()
	return newTestClusterFS(t, n, cfg, nil, opts...)
}

// newTestClusterFS is newTestCluster with the store of member i on fs(i)
// each time it starts.
func newTestClusterFS(t testing.TB, n int, cfg Config, fs func(i int) vfs.FS, opts ...cktest.Option) *testCluster {
	t.Helper()
	newServer := func(m *cktest.Member, ck *clusterkit.ClusterKit) (*Server, error) {
		c := cfg
		c.DataDir = m.Options.DataDir
		c.Logger = m.Options.Logger
		if fs != nil {
			c.FS = fs(m.Index)
		}
		return New(ck, c)
	}
	ready := func(m *cktest.Member, s *Server, p *clusterkit.Partition) error {
		if migrate.Owner(p, m.ID) && !s.parts.Get(p.Index).Owned() {
			return fmt.Errorf("%s: %s not ready", m.ID, p.ID)
		}
		return nil
	}
	return &testCluster{kittest.NewCluster[*Server, versionJSON](t, n, newServer, ready, opts...)}
}

// newClient returns a quorum client seeded with every member, closed when
// the test ends.
func (tc *testCluster) newClient(opts ...client.Option) *client.Client {
	tc.T.Helper()
	var seeds []string
	for _, m := range tc.C.Members() {
		seeds = append(seeds, m.HTTPAddr())
	}
	c, err := client.New(context.Background(), seeds, opts...)
	if err != nil {
		tc.T.Fatalf("client: %v", err)
	}
	tc.T.Cleanup(func() { _ = c.Close() })
	return c
}

// writeKeys sets n keys "<prefix>-<i>" to "<value>-<i>" with c, 16 at a
// time, and returns the values acknowledged.
func (tc *testCluster) writeKeys(c *client.Client, prefix, value string, n int) map[string]string {
	tc.T.Helper()
	return kittest.WriteKeys(tc.T, prefix, value, n, func(k, v string) error {
		_, err := c.Set(context.Background(), k, v)
		return err
	})
}

// checkQuorumReads reads every key with c.
func (tc *testCluster) checkQuorumReads(c *client.Client, want map[string]string) {
	tc.T.Helper()
	tc.ForEach(want, func(key, value string) error {
		got, _, err := c.Get(context.Background(), key)
		if err != nil || got != value {
			return fmt.Errorf("get %s: %q, %v; want %q", key, got, err, value)
		}
		return nil
	})
}
