package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kit/fanout"
	knode "clusterkit.dev/services/kit/node"
	"clusterkit.dev/services/kit/records"
	"clusterkit.dev/services/kit/stream"
)

// Copies: a failed copy from the event's CopyFrom is tried copyAttempts
// times, copyBackoff apart and doubling.
const (
	copyAttempts = 3
	copyBackoff  = 200 * time.Millisecond
)

// Config configures a Copier.
type Config[V records.Version[V]] struct {
	// Cluster is the node's ClusterKit: its map names the owners.
	Cluster *clusterkit.ClusterKit
	// Store receives the copies; Version and Limits decode them.
	Store   *records.Store[V]
	Version func(hi, lo uint64) V
	Limits  stream.Limits
	// Send sends a node-to-node request (the stream's GET) to node.
	Send func(ctx context.Context, node *clusterkit.Node, method, uri string) (*http.Response, error)
	// CopyTimeout bounds the copy of one partition from one node;
	// IdleTimeout fails it when the source sends nothing for that long.
	CopyTimeout, IdleTimeout time.Duration
	// Need returns how many of a partition's other owners (others of
	// them, this node excepted) a copy must merge to hold every write the
	// service acknowledged; at least 1.
	Need func(others int) int
	// Restarted, if not nil, brings in a partition the node held before a
	// restart and that no CopyFrom names (its error fails the fill); nil
	// catches up from every other owner, best effort.
	Restarted func(ctx context.Context, ev clusterkit.PartitionEvent) error
	// Metrics count the copies; Log receives their outcome.
	Metrics *Metrics
	Log     *slog.Logger
}

// Copier brings partitions into this node: a gained partition from the
// previous owner (Fill), and the writes the node lacks from the other
// owners (CatchUp, CatchUpEnough). Copies merge by version, so writes that
// reach the node meanwhile are kept, and a copy cut short keeps what it
// merged.
type Copier[V records.Version[V]] struct {
	cfg  Config[V]
	self string

	mu     sync.Mutex
	filled map[int]bool // partitions filled since the copier was made
}

// NewCopier returns a copier; cfg's fields are all required but Restarted.
func NewCopier[V records.Version[V]](cfg Config[V]) *Copier[V] {
	return &Copier[V]{cfg: cfg, self: cfg.Cluster.GetMyNodeID(), filled: map[int]bool{}}
}

// Fill brings a gained partition's data in: from ev.CopyFrom and from as
// many of the other owners as hold every acknowledged write between them
// (Need), or from the other owners alone when CopyFrom fails; and, the
// first time after a restart, from every other owner as well, for the
// writes missed while down. A restart is a store that held data when it
// was opened, or an event of the library's replay of the node's saved map
// (ReasonRestore): a node that crashed can come back with a store that
// lost what it had not written to its file yet, down to nothing, and must
// then take it from the others like a node that held it. It returns ctx's
// error when cancelled, and an error when too few owners answered (the
// library retries a joining copy).
func (c *Copier[V]) Fill(ctx context.Context, ev clusterkit.PartitionEvent) error {
	p := ev.Partition
	restart := (c.cfg.Store.HadData() || ev.Reason == clusterkit.ReasonRestore) && !c.Filled(p)
	var err error
	switch {
	case ev.CopyFrom != nil:
		// An acknowledged write is on a majority of the owners, not on
		// each: the copy must merge that many of them, or it could miss
		// one (CopyFrom may be an owner that a majority of the others
		// outvoted, or back from a restart and not caught up).
		need := c.need(p)
		err = c.copyFrom(ctx, p, ev.CopyFrom)
		got := 0
		if err == nil {
			got = 1
		} else if ctx.Err() == nil {
			c.cfg.Log.Warn("copy failed; trying the other owners", "partition", p, "from", ev.CopyFrom.ID, "err", err)
		}
		if ctx.Err() == nil && (got < need || restart) {
			enough := need - got
			if restart {
				enough = 0 // from every owner, for the writes missed while down
			}
			got += c.CatchUp(ctx, p, ev.CopyFrom.ID, max(enough, 0))
		}
		if got >= need {
			err = nil
		} else if ctx.Err() == nil {
			err = fmt.Errorf("copy partition %d: %d of the owners provided it, %d needed (from %s: %v)", p, got, need, ev.CopyFrom.ID, err)
		}
	case restart && c.cfg.Restarted != nil:
		err = c.cfg.Restarted(ctx, ev)
	case restart:
		c.CatchUp(ctx, p, "", 0)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		c.MarkFilled(p)
	}
	return err
}

// Gained takes up a partition this node gained (ev.OldRole is none): it
// records the new role in t, unfilled, fills the partition (Fill) and
// records it filled. When the fill failed because ctx ended or a newer
// map superseded the event (ErrSuperseded), or for a joining node (the
// library retries its copy), it returns the error with the partition left
// unfilled; an owner that no other owner could provide the partition to
// serves what it has, and the error is logged and returned.
func (c *Copier[V]) Gained(ctx context.Context, ev clusterkit.PartitionEvent, t *Table) error {
	p := ev.Partition
	t.Set(p, State{Role: ev.NewRole})
	err := c.Fill(ctx, ev)
	if err != nil && (ctx.Err() != nil || errors.Is(err, ErrSuperseded) || ev.NewRole == clusterkit.RoleJoining) {
		// Not filled: the library retries a joining copy, and the event
		// that cancelled or superseded this one finishes the job.
		return err
	}
	if err != nil {
		c.cfg.Log.Error("no owner could provide the partition; serving what this node has",
			"partition", p, "err", err)
	}
	t.Set(p, State{Role: ev.NewRole, Filled: true})
	return err
}

// Filled reports whether the copier has filled partition p (Fill, or
// MarkFilled).
func (c *Copier[V]) Filled(p int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.filled[p]
}

// MarkFilled records that partition p holds its data: a later Fill of p is
// no restart.
func (c *Copier[V]) MarkFilled(p int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.filled[p] = true
}

// need is how many of p's other owners a copy must merge.
func (c *Copier[V]) need(p int) int {
	return max(1, c.cfg.Need(len(c.Sources(p, ""))))
}

// copyFrom copies partition p from node, retrying a failed copy.
func (c *Copier[V]) copyFrom(ctx context.Context, p int, node *clusterkit.Node) error {
	var err error
	for attempt := range copyAttempts {
		if attempt > 0 && !knode.Sleep(ctx, copyBackoff<<(attempt-1)) {
			return ctx.Err()
		}
		if err = c.copyOnce(ctx, p, node, KindCopy); err == nil || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// CatchUp merges partition p from each of its other owners in the current
// map but skip, all at once, and returns how many copies succeeded. With
// enough > 0 it returns as soon as enough succeeded, cancelling the
// others. A failed source is logged: catching up is best effort.
func (c *Copier[V]) CatchUp(ctx context.Context, p int, skip string, enough int) int {
	return fanout.FirstN(ctx, c.Sources(p, skip), enough, func(ctx context.Context, id string) error {
		node := c.cfg.Cluster.Node(id)
		if node == nil {
			return fmt.Errorf("%s is no member", id)
		}
		err := c.copyOnce(ctx, p, node, KindCatchUp)
		if err != nil && ctx.Err() == nil {
			c.cfg.Log.Info("catch-up source failed", "partition", p, "from", id, "err", err)
		}
		return err
	})
}

// ErrSuperseded is returned by CatchUpEnough when the current map no
// longer gives this node the role it was catching up for: a newer map has
// moved the partition, and the event that follows takes it up.
var ErrSuperseded = errors.New("the map no longer gives this node that role")

// CatchUpEnough merges partition p from enough(n) of its n other owners
// (at most n), retrying, a backoff apart, until that many copies
// succeeded, ctx ends, or the current map no longer gives this node role
// for p (ErrSuperseded). The library does not cancel a handler when a
// newer map changes its role, so without that check a deposed primary
// still catching up would go on asking the new primary, which refuses to
// stream while it catches up from the deposed one: each waiting on the
// other for good.
func (c *Copier[V]) CatchUpEnough(ctx context.Context, p int, role clusterkit.Role, enough func(others int) int) error {
	for attempt := 0; ; attempt++ {
		if now := c.roleOf(p); now != role {
			return fmt.Errorf("catching up partition %d as %s, now %s: %w", p, role, now, ErrSuperseded)
		}
		others := len(c.Sources(p, ""))
		need := min(others, enough(others))
		if need <= 0 || c.CatchUp(ctx, p, "", need) >= need {
			return nil
		}
		c.cfg.Log.Warn("could not catch up from enough owners; retrying", "partition", p, "needed", need)
		if !knode.Sleep(ctx, copyBackoff<<min(attempt, 4)) {
			return ctx.Err()
		}
	}
}

// roleOf returns this node's role for partition p in the current map.
func (c *Copier[V]) roleOf(p int) clusterkit.Role {
	parts := c.cfg.Cluster.Partitions()
	if p >= len(parts) {
		return clusterkit.RoleNone
	}
	return Role(&parts[p], c.self)
}

// Sources returns the primary and replicas of p in the current map, but
// this node and skip.
func (c *Copier[V]) Sources(p int, skip string) []string {
	parts := c.cfg.Cluster.Partitions()
	if p >= len(parts) {
		return nil
	}
	part := &parts[p]
	var ids []string
	for _, id := range append([]string{part.PrimaryNode}, part.ReplicaNodes...) {
		if id != c.self && id != skip && id != "" {
			ids = append(ids, id)
		}
	}
	return ids
}

// copyOnce streams partition p from node and merges it into the store.
func (c *Copier[V]) copyOnce(ctx context.Context, p int, node *clusterkit.Node, kind string) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CopyTimeout)
	defer cancel()
	got, err := stream.Pull[V]{
		Source:    node.ID,
		Partition: p,
		Open: func(ctx context.Context) (*http.Response, error) {
			return c.cfg.Send(ctx, node, http.MethodGet, StreamPath+"?partition="+strconv.Itoa(p))
		},
		IdleTimeout: c.cfg.IdleTimeout,
		Version:     c.cfg.Version,
		Limits:      c.cfg.Limits,
		Into:        c.cfg.Store,
	}.Run(ctx)
	res := ResultOK
	if err != nil {
		res = ResultError
	}
	m := c.cfg.Metrics
	m.migrations.WithLabelValues(kind, res).Inc()
	m.migrationTime.Observe(time.Since(start).Seconds())
	m.migratedRecords.Add(float64(got.Records))
	m.migratedBytes.Add(float64(got.Bytes))
	if err == nil {
		c.cfg.Log.Info("copied partition", "partition", p, "from", node.ID, "kind", kind,
			"records", got.Records, "bytes", got.Bytes, "took", time.Since(start))
	}
	return err
}
