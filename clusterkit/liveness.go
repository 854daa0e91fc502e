package clusterkit

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"clusterkit.dev/clusterkit/internal/state"
)

// detector tracks, on the leader, when each raft server was last heard
// from. It uses only what raft already gives: the leader heartbeats every
// server (voter or not) and reports a failed heartbeat with the server's
// last contact, and the first heartbeat that succeeds again. A server with
// no failed heartbeat is alive.
//
// It is leader-local and rebuilt on every new leadership: a new leader
// assumes every server was heard from when it took over, except the
// previous leader, whose last contact it knows from its time as follower.
// Raft reports no success after no failure, so a previous leader that is
// back before its first heartbeat fails would stay silent for ever; a join
// request from a node (every node sends one when it starts) counts as
// hearing from it.
type detector struct {
	mu      sync.Mutex
	failing map[string]time.Time // server ID -> last contact
	heardAt map[string]time.Time // server ID -> its last join request
	wake    func()
}

func newDetector(wake func()) *detector {
	return &detector{failing: map[string]time.Time{}, heardAt: map[string]time.Time{}, wake: wake}
}

// reset starts a leadership: everyone counts as heard from now, except
// prevLeader, last heard from at prevContact (if known) unless it has
// asked to join since.
func (d *detector) reset(prevLeader string, prevContact time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.failing)
	if prevLeader != "" && !prevContact.IsZero() && !d.heardAt[prevLeader].After(prevContact) {
		d.failing[prevLeader] = prevContact
	}
}

// heard records that id asked to join at now: it is running again.
func (d *detector) heard(id string, now time.Time) {
	d.mu.Lock()
	d.heardAt[id] = now
	delete(d.failing, id)
	d.mu.Unlock()
	d.wake()
}

func (d *detector) failed(id string, lastContact, now time.Time) {
	d.mu.Lock()
	if _, ok := d.failing[id]; !ok {
		if lastContact.IsZero() {
			lastContact = now
		}
		d.failing[id] = lastContact
	}
	d.mu.Unlock()
	d.wake()
}

func (d *detector) resumed(id string) {
	d.mu.Lock()
	delete(d.failing, id)
	d.mu.Unlock()
	d.wake()
}

// status returns the liveness id should have at now.
func (d *detector) status(id string, now time.Time, cfg *Config) state.NodeStatus {
	d.mu.Lock()
	last, failing := d.failing[id]
	d.mu.Unlock()
	switch silence := now.Sub(last); {
	case !failing:
		return state.StatusAlive
	case silence >= cfg.DeadTimeout:
		return state.StatusDead
	case silence >= cfg.SuspectTimeout:
		return state.StatusSuspect
	}
	return state.StatusAlive
}

// silentSince returns when id was last heard from, if it is failing.
func (d *detector) silentSince(id string) (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.failing[id]
	return t, ok
}

// observe feeds raft's heartbeat observations into d until ctx ends.
func (d *detector) observe(ctx context.Context, rn *raftNode) {
	ch := make(chan raft.Observation, 64)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation:
			return true
		}
		return false
	})
	rn.RegisterObserver(obs)
	defer rn.DeregisterObserver(obs)
	for {
		select {
		case <-ctx.Done():
			return
		case o := <-ch:
			switch ob := o.Data.(type) {
			case raft.FailedHeartbeatObservation:
				d.failed(string(ob.PeerID), ob.LastContact, time.Now())
			case raft.ResumedHeartbeatObservation:
				d.resumed(string(ob.PeerID))
			}
		}
	}
}
