package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"clusterkit.dev/clusterkit/cktest"
	"clusterkit.dev/services/kit/kittest"
)

// Nodes as processes (kittest.Procs). A node stopped with SIGSTOP stands for
// a paused VM, a stalled process or a machine cut off by the network: the
// kernel still accepts its connections, and nothing answers.

// nodeBin is the kv-async command, built once per test run.
var nodeBin kittest.Binary

func TestMain(m *testing.M) { nodeBin.Main(m) }

// procCluster is a cluster of kv-async processes on 127.0.0.1.
type procCluster struct {
	*kittest.Procs
}

// startProcCluster starts n kv-async processes (kittest.StartProcs) with
// env added to every node's environment, and waits until every partition
// has a primary and its replicas everywhere and every owner serves it.
func startProcCluster(t *testing.T, n int, env ...string) *procCluster {
	t.Helper()
	pc := &procCluster{kittest.StartProcs(t, nodeBin.Build(t, "kv-async", ".."), n, env...)}
	// An owner, primary or replica, serves a read with consistency=any from
	// its own data.
	pc.ReadQuery = "consistency=" + consistencyAny
	pc.waitReady()
	return pc
}

// waitReady waits until every node is ready (kittest.Procs.WaitReady).
func (pc *procCluster) waitReady() {
	pc.T.Helper()
	pc.WaitReady(pc.All(), 40*time.Second)
}

// getJSON GETs path from node i into out.
func (pc *procCluster) getJSON(i int, path string, out any) error {
	resp, err := pc.HC.Get("http://" + pc.Nodes[i].HTTP + path)
	if err != nil {
		return err
	}
	defer kittest.DrainBody(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: GET %s: %s", pc.Nodes[i].ID, path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// replicated waits until node i, as primary, has every write it accepted
// on every replica.
func (pc *procCluster) replicated(i int) {
	pc.T.Helper()
	cktest.Eventually(pc.T, 20*time.Second, pc.Nodes[i].ID+" replicated", func() error {
		var st ReplicationStatus
		if err := pc.getJSON(i, "/kv/replication", &st); err != nil {
			return err
		}
		if st.Operations != 0 {
			return fmt.Errorf("%d writes not replicated", st.Operations)
		}
		return nil
	})
}
