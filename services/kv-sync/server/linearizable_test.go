package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"clusterkit.dev/clusterkit/cktest"
	"clusterkit.dev/services/kit/migrate"
	"clusterkit.dev/services/kv-sync/client"
)

// The porcupine model of a key-value register per key: an absent or deleted
// key reads as "", which no test value is.
type kvOp int

const (
	kvGet kvOp = iota
	kvSet
	kvDelete
)

type kvInput struct {
	op    kvOp
	key   string
	value string
}

type kvOutput struct {
	value string // "" when not found
}

var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(kvInput).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in, st := input.(kvInput), state.(string)
		switch in.op {
		case kvSet:
			return true, in.value
		case kvDelete:
			return true, ""
		}
		return output.(kvOutput).value == st, st
	},
	DescribeOperation: func(input, output any) string {
		in := input.(kvInput)
		switch in.op {
		case kvSet:
			return fmt.Sprintf("set(%s, %s)", in.key, in.value)
		case kvDelete:
			return fmt.Sprintf("delete(%s)", in.key)
		}
		return fmt.Sprintf("get(%s) -> %q", in.key, output.(kvOutput).value)
	},
}

// TestModelRejectsAStaleRead makes sure the check below can fail: a read
// that returns an overwritten value after the overwrite completed is not
// linearizable.
func TestModelRejectsAStaleRead(t *testing.T) {
	op := func(client int, in kvInput, call, ret int64, out string) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: in, Call: call, Output: kvOutput{out}, Return: ret}
	}
	history := []porcupine.Operation{
		op(0, kvInput{op: kvSet, key: "x", value: "1"}, 0, 10, ""),
		op(0, kvInput{op: kvSet, key: "x", value: "2"}, 20, 30, ""),
		op(1, kvInput{op: kvGet, key: "x"}, 40, 50, "1"),
	}
	if porcupine.CheckOperations(kvModel, history) {
		t.Fatal("a stale read checked as linearizable")
	}
	history[2].Output = kvOutput{"2"}
	if !porcupine.CheckOperations(kvModel, history) {
		t.Fatal("a fresh read checked as not linearizable")
	}
}

// Bounds of TestHistoriesAreLinearizable: each fault must be followed by
// at least minOpsAfterFault successful operations before the next, and
// at most maxFailedFraction of all operations may fail (a failed write
// may still have taken effect, and is checked as such). The SIGKILL of the
// raft leader makes every node refuse from MapLease (1.5s) until a new
// leader is elected and the maps are current, up to about a second of a
// run of under five: that window, not the kills of owners, sets the bound.
const (
	minOpsAfterFault  = 300
	maxFailedFraction = 0.20
)

// TestHistoriesAreLinearizable runs concurrent clients doing sets, deletes
// and gets on a few keys of a cluster of node processes while, in turn, a
// follower and then the raft leader are killed with SIGKILL and restarted
// from their data directories, and a fourth node joins (partitions move to
// it). It checks the history with porcupine: a write that failed (timed
// out or refused) may or may not have taken effect, so it is recorded as
// still running at the end; a failed read observed nothing and is left
// out. Each fault must be followed by minOpsAfterFault successful
// operations, and at most maxFailedFraction of the operations may fail.
func TestHistoriesAreLinearizable(t *testing.T) {
	if testing.Short() {
		t.Skip("starts node processes")
	}
	// FSYNC=false: a SIGKILL loses nothing the process wrote; the test
	// is about node faults, not the disk of a loaded test machine.
	pc := startProcCluster(t, 3, "FSYNC=false")
	const clients = 6
	keys := []string{"a", "b", "c", "d", "e", "f", "g", "h"}

	var mu sync.Mutex
	var history []porcupine.Operation
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }
	var ok, failedWrites, failedReads atomic.Int64
	var failures []string
	stop := make(chan struct{})

	var wg sync.WaitGroup
	for id := range clients {
		c, err := client.New(context.Background(), pc.Seeds(), client.WithTimeout(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				in := kvInput{key: keys[rand.IntN(len(keys))]}
				switch r := rand.IntN(10); {
				case r < 4:
					in.op = kvSet
					in.value = fmt.Sprintf("c%d-%d", id, n)
				case r < 5:
					in.op = kvDelete
				default:
					in.op = kvGet
				}
				call := now()
				var out kvOutput
				var err error
				switch in.op {
				case kvSet:
					_, err = c.Set(context.Background(), in.key, in.value)
				case kvDelete:
					_, err = c.Delete(context.Background(), in.key)
				case kvGet:
					out.value, _, err = c.Get(context.Background(), in.key)
					if errors.Is(err, client.ErrNotFound) {
						err = nil
					}
				}
				ret := now()
				mu.Lock()
				switch {
				case err == nil:
					ok.Add(1)
					history = append(history, porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret})
				case in.op == kvGet:
					failedReads.Add(1)
				default:
					failedWrites.Add(1)
					// Maybe applied: it may take effect at any time after
					// its call.
					history = append(history, porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: math.MaxInt64})
				}
				if err != nil && len(failures) < 5 {
					failures = append(failures, fmt.Sprintf("%s at %v: %v", kvModel.DescribeOperation(in, out), time.Duration(call).Round(time.Millisecond), err))
				}
				mu.Unlock()
			}
		})
	}
	var halt sync.Once
	defer func() {
		halt.Do(func() { close(stop) })
		wg.Wait()
	}()

	// settle waits until the cluster is ready again and minOpsAfterFault
	// operations have succeeded since the fault began.
	settle := func(fault string, before int64) {
		t.Helper()
		pc.WaitReady(pc.All(), 30*time.Second)
		cktest.Eventually(t, 30*time.Second, "operations after "+fault, func() error {
			if n := ok.Load() - before; n < minOpsAfterFault {
				return fmt.Errorf("%d operations succeeded since %s", n, fault)
			}
			return nil
		})
		t.Logf("%s: settled %v after the start", fault, time.Since(start).Round(time.Millisecond))
	}
	kill := func(what string, i int) {
		t.Helper()
		before := ok.Load()
		t.Logf("SIGKILL to %s (%s) at %v", pc.Nodes[i].ID, what, time.Since(start).Round(time.Millisecond))
		pc.Nodes[i].Kill()
		time.Sleep(time.Second)
		pc.Start(i) // from its data directory
		settle("the kill of the "+what, before)
	}

	cktest.Eventually(t, 10*time.Second, "warm-up", func() error {
		if n := ok.Load(); n < minOpsAfterFault {
			return fmt.Errorf("%d operations", n)
		}
		return nil
	})
	leader := pc.Leader(0)
	kill("follower", (leader+1)%len(pc.Nodes))
	kill("raft leader", pc.Leader((leader+1)%len(pc.Nodes)))
	before := ok.Load()
	added := pc.Add()
	newID := pc.Nodes[added].ID
	t.Logf("%s joins at %v", newID, time.Since(start).Round(time.Millisecond))
	cktest.Eventually(t, 60*time.Second, newID+" owns partitions", func() error {
		info, err := pc.ClusterInfo(0)
		if err != nil {
			return err
		}
		owned := 0
		for _, p := range info.Partitions {
			if len(p.JoiningNodes) > 0 {
				return fmt.Errorf("%s still moving to %v", p.ID, p.JoiningNodes)
			}
			if migrate.Owner(&p, newID) {
				owned++
			}
		}
		if owned == 0 {
			return fmt.Errorf("%s owns no partition yet", newID)
		}
		return nil
	})
	settle("the join of "+newID, before)
	halt.Do(func() { close(stop) })
	wg.Wait()

	total := ok.Load() + failedWrites.Load() + failedReads.Load()
	t.Logf("%d operations: %d succeeded, %d writes and %d reads failed; first failures: %v",
		total, ok.Load(), failedWrites.Load(), failedReads.Load(), failures)
	if failed := failedWrites.Load() + failedReads.Load(); float64(failed) > maxFailedFraction*float64(total) {
		t.Errorf("%d of %d operations failed, more than %.0f%%", failed, total, 100*maxFailedFraction)
	}
	checkLinearizable(t, dropUnseenFailedWrites(history))
}

// dropUnseenFailedWrites leaves out of history every failed write (one
// still running at the end, Return math.MaxInt64) whose value no read
// returned: not taking effect is one of its allowed outcomes, and without
// them the check stays small when many writes fail.
func dropUnseenFailedWrites(history []porcupine.Operation) []porcupine.Operation {
	seen := map[kvInput]bool{}
	for _, op := range history {
		if in := op.Input.(kvInput); in.op == kvGet {
			seen[kvInput{op: kvSet, key: in.key, value: op.Output.(kvOutput).value}] = true
		}
	}
	out := history[:0:0]
	for _, op := range history {
		in := op.Input.(kvInput)
		if op.Return == math.MaxInt64 && !seen[kvInput{op: kvSet, key: in.key, value: in.value}] {
			continue
		}
		out = append(out, op)
	}
	return out
}

// checkLinearizable fails the test if history is not linearizable under
// kvModel.
func checkLinearizable(t *testing.T, history []porcupine.Operation) {
	t.Helper()
	res, info := porcupine.CheckOperationsVerbose(kvModel, history, 20*time.Second)
	switch res {
	case porcupine.Ok:
	case porcupine.Unknown:
		t.Fatal("the linearizability check timed out")
	default:
		if path := t.TempDir() + "/history.html"; porcupine.VisualizePath(kvModel, info, path) == nil {
			t.Logf("history visualised in %s", path)
		}
		// The test's directory goes with it: log the keys whose
		// operations cannot be ordered, each operation with its client and
		// its call and return times, so that the failure can be read from
		// the test's output alone.
		for _, ops := range kvModel.Partition(history) {
			if porcupine.CheckOperations(kvModel, ops) {
				continue
			}
			slices.SortFunc(ops, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
			t.Logf("the operations of key %q, by call time:", ops[0].Input.(kvInput).key)
			for _, op := range ops {
				t.Logf("  client %d, %v to %v: %s", op.ClientId, time.Duration(op.Call), time.Duration(op.Return), kvModel.DescribeOperation(op.Input, op.Output))
			}
		}
		t.Fatal("history is not linearizable")
	}
}
