package clusterkit

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// lease keeps LeaderContact honest across gaps. Raft's last contact becomes
// fresh with the first heartbeat a node receives after it was paused or cut
// off, before the entries it missed (a failover of its partitions, say)
// reach its map. So after a gap, or when the node starts, LeaderContact
// answers the zero time until the node's map is as new as the leader's was
// when asked: a primary that asks it does not serve from a map it does not
// know is current.
type lease struct {
	mu     sync.Mutex
	seen   time.Time // last time contact was fresh, with no gap before it
	resync bool      // the map must catch up with the leader's first
	kick   chan struct{}
}

func newLease() lease { return lease{resync: true, kick: make(chan struct{}, 1)} }

// leaseGap is how long without fresh contact counts as a gap: half
// DeadTimeout, the least silence after which the leader may fail the node
// over.
func (ck *ClusterKit) leaseGap() time.Duration { return ck.opts.cfg.DeadTimeout / 2 }

// LeaderContact returns when this node last heard from the raft leader
// with its map known to be current: now on the leader, the last message
// from it on a follower. It is the zero time until the node's map has
// caught up with the leader's after it started, and again after any gap in
// contact longer than half DeadTimeout (a pause, a network cut): raft's
// contact becomes fresh with the first heartbeat after a gap, before the
// entries the node missed (a failover of its partitions, say) reach its
// map.
//
// The leader marks a node dead DeadTimeout after it last heard from it, so
// a primary whose last contact is older than a fraction of DeadTimeout may
// already have been replaced: a service that serves reads from its primary
// alone can refuse them then, rather than answer from a stale map (a
// primary cut off by the network, or paused, and still reached by clients).
func (ck *ClusterKit) LeaderContact() time.Time {
	last, _ := ck.leaderContact()
	return last
}

// leaderContact is LeaderContact, and whether contact is fresh but the map
// must catch up first.
func (ck *ClusterKit) leaderContact() (time.Time, bool) {
	rn := ck.raftNode()
	if rn == nil {
		return time.Time{}, false
	}
	now := time.Now()
	last := now
	if rn.State() != raft.Leader {
		last = rn.LastContact()
	}
	ck.lease.mu.Lock()
	defer ck.lease.mu.Unlock()
	fresh := now.Sub(last) < ck.leaseGap()
	switch {
	case !fresh:
		return last, false // the caller sees how old
	case ck.lease.resync:
	case now.Sub(ck.lease.seen) < ck.leaseGap():
		ck.lease.seen = now
		return last, false
	default:
		ck.lease.resync = true // fresh again after a gap
	}
	select {
	case ck.lease.kick <- struct{}{}:
	default:
	}
	return time.Time{}, true
}

// watchLease notes fresh contact every interval, so that a gap is told
// apart from a quiet time with no caller, and brings the map up to the
// leader's when contact is fresh again after a gap (or after the start).
func (ck *ClusterKit) watchLease(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-ck.lease.kick:
		}
		if _, catchUp := ck.leaderContact(); catchUp {
			ck.catchUpLease(ctx)
		}
	}
}

// catchUpLease waits until this node's map is at least the version the
// leader has, then ends the resync. It gives up after a gap's time, to be
// tried again.
func (ck *ClusterKit) catchUpLease(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, ck.leaseGap())
	defer cancel()
	v, err := ck.leaderVersion(ctx)
	if err == nil {
		err = ck.WaitForMap(ctx, v)
	}
	if err != nil {
		return
	}
	ck.lease.mu.Lock()
	ck.lease.resync, ck.lease.seen = false, time.Now()
	ck.lease.mu.Unlock()
}

// leaderVersion asks the raft leader for its map version. On the leader it
// is its own, once a round with a quorum confirms it still leads (a leader
// resumed after a pause may have been replaced without knowing it yet).
func (ck *ClusterKit) leaderVersion(ctx context.Context) (uint64, error) {
	if rn := ck.raftNode(); rn != nil && rn.State() == raft.Leader {
		if err := rn.VerifyLeader().Error(); err != nil {
			return 0, err
		}
		return ck.Version(), nil
	}
	leader := ck.Leader()
	if leader == nil || leader.ID == ck.opts.NodeID {
		return 0, ErrNoLeader
	}
	var h Health
	if err := ck.get(ctx, leader.IP, "/health/detailed", &h); err != nil {
		return 0, err
	}
	if h.RaftState != "leader" {
		return 0, ErrNoLeader
	}
	return h.Version, nil
}
