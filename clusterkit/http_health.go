package clusterkit

import (
	"net/http"
	"slices"
	"time"

	"github.com/hashicorp/raft"
	"github.com/labstack/echo/v4"
)

// handleLeader serves GET /consensus/leader; 503 when no leader is known.
func (ck *ClusterKit) handleLeader(c echo.Context) error {
	rn := ck.raftNode()
	if rn == nil {
		return ErrNotStarted
	}
	addr, id := rn.LeaderWithID()
	if id == "" {
		return ErrNoLeader
	}
	info := LeaderInfo{LeaderID: string(id), LeaderRaftAddr: string(addr), Term: rn.CurrentTerm(),
		IsSelf: string(id) == ck.opts.NodeID}
	if n := ck.Node(string(id)); n != nil {
		info.LeaderHTTPAddr = n.IP
	}
	return c.JSON(http.StatusOK, info)
}

// handleConsensusStats serves GET /consensus/stats.
func (ck *ClusterKit) handleConsensusStats(c echo.Context) error {
	rn := ck.raftNode()
	if rn == nil {
		return ErrNotStarted
	}
	s := ConsensusStats{
		State: lowerState(rn.State()), Term: rn.CurrentTerm(), CommitIndex: rn.CommitIndex(),
		AppliedIndex: rn.AppliedIndex(), Raft: rn.Stats(), Voters: []string{}, NonVoters: []string{},
	}
	if t := rn.LastContact(); !t.IsZero() && rn.State() != raft.Leader {
		s.LastContactSeconds = time.Since(t).Seconds()
	}
	if servers, err := rn.configuration(); err == nil {
		for _, srv := range servers {
			if srv.Suffrage == raft.Voter {
				s.Voters = append(s.Voters, string(srv.ID))
			} else {
				s.NonVoters = append(s.NonVoters, string(srv.ID))
			}
		}
	}
	slices.Sort(s.Voters)
	slices.Sort(s.NonVoters)
	return c.JSON(http.StatusOK, s)
}

// health reports whether this node is in a cluster with a known leader and
// a partition map, and why not.
func (ck *ClusterKit) health() Health {
	h := Health{Status: "ok", NodeID: ck.opts.NodeID}
	v := ck.view.Load()
	if v != nil {
		h.Version = v.version
	}
	if l := ck.Leader(); l != nil {
		h.LeaderID = l.ID
	}
	ck.mu.Lock()
	started, stopped, member := ck.started, ck.stopped, ck.isMember
	ck.mu.Unlock()
	switch {
	case stopped:
		h.Reason = "stopped"
	case !started || !member:
		h.Reason = "not a member yet"
	case h.LeaderID == "":
		h.Reason = "no leader known"
	case v == nil || v.nodes[ck.opts.NodeID] == nil:
		h.Reason = "this node is not in the cluster map yet"
	case !v.hasMap():
		h.Reason = "no partition map yet"
	}
	if h.Reason != "" {
		h.Status = "unavailable"
	}
	return h
}

func healthCode(h Health) int {
	if h.Status == "ok" {
		return http.StatusOK
	}
	return http.StatusServiceUnavailable
}

// handleHealth serves GET /health: 200 when the node can route, 503 with a
// reason otherwise.
func (ck *ClusterKit) handleHealth(c echo.Context) error {
	h := ck.health()
	return c.JSON(healthCode(h), h)
}

// handleHealthDetailed serves GET /health/detailed: /health plus raft and
// ownership details.
func (ck *ClusterKit) handleHealthDetailed(c echo.Context) error {
	// Before the version: a map current now is at least as new later.
	current := time.Since(ck.LeaderContact()) < ck.leaseGap()
	h := ck.health()
	if rn := ck.raftNode(); rn != nil {
		h.RaftState = lowerState(rn.State())
		h.Term = rn.CurrentTerm()
		lc := 0.0
		if t := rn.LastContact(); !t.IsZero() && rn.State() != raft.Leader {
			lc = time.Since(t).Seconds()
		}
		h.LastContactSeconds = &lc
		h.MapCurrent = &current
		if servers, err := rn.configuration(); err == nil {
			for _, s := range servers {
				if string(s.ID) == ck.opts.NodeID {
					voter := s.Suffrage == raft.Voter
					h.Voter = &voter
				}
			}
		}
	}
	if v := ck.view.Load(); v != nil {
		p, r := v.owned(ck.opts.NodeID)
		h.PrimaryPartitions, h.ReplicaPartitions = &p, &r
		h.Nodes = map[string]int{}
		for _, n := range v.nodeList {
			h.Nodes[string(n.State)]++
		}
		if self := v.nodes[ck.opts.NodeID]; self != nil {
			draining, safe := self.Draining, v.safeToStop(ck.opts.NodeID)
			h.Draining, h.SafeToStop = &draining, &safe
		}
		mh := v.health()
		h.UnderReplicated, h.NoLivePrimary, h.MovesInFlight = &mh.underReplicated, &mh.noLivePrimary, &mh.moves
	}
	return c.JSON(healthCode(h), h)
}
