package server

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
	"clusterkit.dev/services/kit/kittest"
	"clusterkit.dev/services/kit/migrate"
)

// testCluster is the kit's test cluster (kittest.Cluster) with a Server on
// every member.
type testCluster struct {
	*kittest.Cluster[*Server, versionJSON]
}

// answer is a decoded KV answer.
type answer = kittest.Answer[versionJSON]

type versionJSON struct {
	Epoch uint64 `json:"epoch"`
	Seq   uint64 `json:"seq"`
}

// newTestCluster starts n nodes, each with a Server configured by cfg (its
// DataDir is the member's), and waits until the map is settled and every
// owner holds its partitions, every primary caught up.
func newTestCluster(t testing.TB, n int, cfg Config, opts ...cktest.Option) *testCluster {
	t.Helper()
	newServer := func(m *cktest.Member, ck *clusterkit.ClusterKit) (*Server, error) {
		c := cfg
		c.DataDir = m.Options.DataDir
		c.Logger = m.Options.Logger
		return New(ck, c)
	}
	ready := func(m *cktest.Member, s *Server, p *clusterkit.Partition) error {
		if migrate.Owner(p, m.ID) && !s.parts.Get(p.Index).Owned() {
			return fmt.Errorf("%s: %s not ready", m.ID, p.ID)
		}
		if p.PrimaryNode == m.ID && !servable(s.parts.Get(p.Index)) {
			return fmt.Errorf("%s: %s not servable as primary", m.ID, p.ID)
		}
		return nil
	}
	return &testCluster{kittest.NewCluster[*Server, versionJSON](t, n, newServer, ready, opts...)}
}

// randomRunning returns a random running member's index.
func (tc *testCluster) randomRunning() int {
	running := tc.C.Running()
	return running[rand.IntN(len(running))].Index
}

func (tc *testCluster) set(i int, key, value string) answer {
	tc.T.Helper()
	b, _ := json.Marshal(map[string]string{"key": key, "value": value})
	return tc.Do(i, http.MethodPost, "/kv/set", b, nil)
}

// writeKeys sets n keys "<prefix>-<i>" to "<value>-<i>" through random
// running members, 16 at a time, and returns the values acknowledged.
func (tc *testCluster) writeKeys(prefix, value string, n int) map[string]string {
	tc.T.Helper()
	return kittest.WriteKeys(tc.T, prefix, value, n, func(k, v string) error {
		// 503 means "retry": a primary is changing.
		a := tc.set(tc.randomRunning(), k, v)
		for try := 0; a.Status == http.StatusServiceUnavailable && try < 10; try++ {
			time.Sleep(100 * time.Millisecond)
			a = tc.set(tc.randomRunning(), k, v)
		}
		if a.Status != http.StatusOK {
			return fmt.Errorf("%d %s", a.Status, a.Body)
		}
		return nil
	})
}
