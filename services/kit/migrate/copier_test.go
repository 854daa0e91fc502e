package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
	"clusterkit.dev/services/kit/records"
)

// ver is a version as the services have: two numbers, ordered.
type ver struct{ hi, lo uint64 }

func (v ver) Less(o ver) bool       { return v.hi < o.hi || v.hi == o.hi && v.lo < o.lo }
func (v ver) Pair() (hi, lo uint64) { return v.hi, v.lo }
func fromPair(hi, lo uint64) ver    { return ver{hi, lo} }

// TestCatchUpEnoughStopsWhenTheRoleMoved runs CatchUpEnough on the replica
// of a partition of a two-node cluster, its one source refusing to stream
// (as an owner that is itself catching up does). Asked to catch up as the
// partition's primary, a role the map does not give it, it returns
// ErrSuperseded at once and asks no one; asked as its replica, the role it
// has, it keeps asking until its context ends.
func TestCatchUpEnoughStopsWhenTheRoleMoved(t *testing.T) {
	cfg := clusterkit.LocalConfig()
	cfg.ReplicationFactor = 2
	c := cktest.New(t, 2, cktest.WithConfig(cfg))
	c.WaitConverged()
	const p = 0
	var replica *clusterkit.ClusterKit
	c.Eventually("partition 0 with a primary and a replica", func() error {
		for _, m := range c.Members() {
			parts := m.CK.Partitions()
			if len(parts) <= p || len(parts[p].ReplicaNodes) != 1 {
				return fmt.Errorf("%s: partition %d has no replica yet", m.ID, p)
			}
			if parts[p].ReplicaNodes[0] == m.ID {
				replica = m.CK
			}
		}
		if replica == nil {
			return fmt.Errorf("no member is partition %d's replica in its own map", p)
		}
		return nil
	})

	st, err := records.Open(t.TempDir(), records.Options{}, fromPair)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var sent atomic.Int64
	cp := NewCopier(Config[ver]{
		Cluster: replica, Store: st, Version: fromPair,
		Send: func(context.Context, *clusterkit.Node, string, string) (*http.Response, error) {
			sent.Add(1)
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Status: "503 Service Unavailable",
				Body: io.NopCloser(strings.NewReader(`{"error":"still catching up"}`))}, nil
		},
		CopyTimeout: time.Second, IdleTimeout: time.Second,
		Need:    func(int) int { return 1 },
		Metrics: NewMetrics("svc"), Log: slog.Default(),
	})
	one := func(int) int { return 1 }

	err = cp.CatchUpEnough(t.Context(), p, clusterkit.RolePrimary, one)
	if !errors.Is(err, ErrSuperseded) {
		t.Errorf("catching up as primary on the replica: %v, want ErrSuperseded", err)
	}
	if n := sent.Load(); n != 0 {
		t.Errorf("catching up as primary on the replica asked %d times, want none", n)
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	err = cp.CatchUpEnough(ctx, p, clusterkit.RoleReplica, one)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("catching up as replica from a refusing source: %v, want the context's deadline", err)
	}
	if n := sent.Load(); n < 2 {
		t.Errorf("catching up as replica from a refusing source asked %d times, want retries", n)
	}
}

// TestFillAfterARestartWithAnEmptyStore fills a partition on a node whose
// store is empty, as a crashed node's can be when what it had not yet
// written to its file is lost: an event of the library's replay of the
// saved map (ReasonRestore) brings the partition in from the others
// (Restarted) although the store held nothing when opened; any other
// event without a CopyFrom takes it as it is.
func TestFillAfterARestartWithAnEmptyStore(t *testing.T) {
	c := cktest.New(t, 1)
	c.WaitConverged()
	ck := c.Member(0).CK
	st, err := records.Open(t.TempDir(), records.Options{}, fromPair)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.HadData() {
		t.Fatal("a new store had data")
	}
	restarted := map[int]bool{}
	cp := NewCopier(Config[ver]{
		Cluster: ck, Store: st, Version: fromPair,
		Send: func(context.Context, *clusterkit.Node, string, string) (*http.Response, error) {
			return nil, errors.New("no node to send to")
		},
		CopyTimeout: time.Second, IdleTimeout: time.Second,
		Need: func(int) int { return 1 },
		Restarted: func(_ context.Context, ev clusterkit.PartitionEvent) error {
			restarted[ev.Partition] = true
			return nil
		},
		Metrics: NewMetrics("svc"), Log: slog.Default(),
	})
	for p, reason := range []clusterkit.Reason{clusterkit.ReasonRestore, clusterkit.ReasonJoin, clusterkit.ReasonRebalance} {
		ev := clusterkit.PartitionEvent{Partition: p, OldRole: clusterkit.RoleNone, NewRole: clusterkit.RolePrimary, Reason: reason}
		if err := cp.Fill(t.Context(), ev); err != nil {
			t.Fatalf("fill of partition %d (%s): %v", p, reason, err)
		}
		if want := reason == clusterkit.ReasonRestore; restarted[p] != want {
			t.Errorf("fill of partition %d (%s): brought in from the others %v, want %v", p, reason, restarted[p], want)
		}
		if !cp.Filled(p) {
			t.Errorf("partition %d (%s) not filled", p, reason)
		}
	}
}
