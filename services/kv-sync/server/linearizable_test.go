package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"clusterkit.dev/clusterkit/cktest"
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

// TestHistoriesAreLinearizable runs concurrent clients doing sets, deletes
// and gets on a few keys of a 3-node cluster, stops one node (no leave) in
// the middle and restarts it, and checks the history with porcupine. A
// write that failed may or may not have taken effect: it is recorded as
// still running at the end. A failed read observed nothing and is left out.
func TestHistoriesAreLinearizable(t *testing.T) {
	cfg := testConfig()
	cfg.ReReplicationDelay = time.Minute
	tc := newTestCluster(t, 3, Config{}, cktest.WithConfig(cfg))
	const clients, run = 6, 3 * time.Second
	keys := []string{"x", "y", "z"}

	var mu sync.Mutex
	var history []porcupine.Operation
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }
	var failedWrites, failedReads int

	var wg sync.WaitGroup
	for id := range clients {
		c := tc.newClient(client.WithTimeout(2 * time.Second))
		wg.Go(func() {
			for n := 0; time.Since(start) < run; n++ {
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
					history = append(history, porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret})
				case in.op == kvGet:
					failedReads++
				default:
					failedWrites++
					history = append(history, porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: math.MaxInt64})
				}
				mu.Unlock()
			}
		})
	}

	victim := 1
	for tc.c.Member(victim).CK.IsLeader() {
		victim++
	}
	time.Sleep(run / 3)
	tc.kill(victim)
	time.Sleep(run / 3)
	tc.start(victim)
	wg.Wait()

	t.Logf("%d operations (%d failed writes, %d failed reads)", len(history), failedWrites, failedReads)
	if len(history) < 100 {
		t.Fatalf("only %d operations: the history proves little", len(history))
	}
	checkLinearizable(t, history)
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
		t.Fatal("history is not linearizable")
	}
}
