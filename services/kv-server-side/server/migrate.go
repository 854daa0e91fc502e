package server

import (
	"context"
	"fmt"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kit/migrate"
	"clusterkit.dev/services/kit/service"
	"clusterkit.dev/services/kv-server-side/internal/store"
)

// Migration (package migrate of the kit). A node that gains a partition
// streams it from the event's CopyFrom (GET /kv/internal/stream) and merges
// it by version; writes that reach it meanwhile, as new owner, are merged
// the same way, so none is lost. A node promoted to primary first catches
// up from the partition's other owners, since with AckAll a write may have
// been acknowledged without it. A node restarting with data catches up each
// partition it owns, for the writes it missed while down. The handler
// returns once the data is in: with make-before-break moves that is what
// tells the cluster the node is ready.

// handleEvent is the node's partition event handler. The library runs the
// events of one partition in order, and different partitions concurrently.
func (s *Server) handleEvent(ctx context.Context, ev clusterkit.PartitionEvent) error {
	p := ev.Partition
	if ev.NewRole != clusterkit.RolePrimary {
		s.unc.forget(p)
	}
	switch {
	case ev.NewRole == clusterkit.RoleNone:
		gen := s.parts.Set(p, migrate.State{Role: clusterkit.RoleNone})
		s.drops.Schedule(p, gen)
		return nil
	case ev.OldRole == clusterkit.RoleNone:
		return s.copier.Gained(ctx, ev, s.parts)
	case !s.parts.Get(p).Filled:
		// The copy of an earlier gain was cancelled (the node became an
		// owner before it finished): take the data from the owners now.
		s.parts.Set(p, migrate.State{Role: ev.NewRole})
		s.copier.CatchUp(ctx, p, "", 0)
		if err := ctx.Err(); err != nil {
			return err
		}
		s.copier.MarkFilled(p)
		s.parts.Set(p, migrate.State{Role: ev.NewRole, Filled: true})
		return nil
	case ev.NewRole == clusterkit.RolePrimary:
		s.parts.Set(p, migrate.State{Role: ev.NewRole, Filled: true, CatchingUp: true})
		if err := s.copier.CatchUpEnough(ctx, p, ev.NewRole, promotionSources); err != nil {
			return err
		}
		s.parts.Set(p, migrate.State{Role: ev.NewRole, Filled: true})
		return nil
	default:
		// Demoted to replica, or a joining node made a replica: it
		// already holds the data.
		s.parts.Set(p, migrate.State{Role: ev.NewRole, Filled: true})
		return nil
	}
}

// restarted brings in a partition this node held before a restart and
// that no CopyFrom names. A primary back from a restart may have missed
// writes a promoted replica took meanwhile: it must hold every
// acknowledged write before it serves, as a promoted one does. Another
// owner catches up from every other owner, best effort.
func (s *Server) restarted(ctx context.Context, ev clusterkit.PartitionEvent) error {
	if ev.NewRole == clusterkit.RolePrimary {
		return s.copier.CatchUpEnough(ctx, ev.Partition, ev.NewRole, promotionSources)
	}
	s.copier.CatchUp(ctx, ev.Partition, "", 0)
	return nil
}

// copySources is how many of p's other owners (primary and replicas, this
// node excepted) a copy must merge to hold every write acknowledged with
// AckAll: such a write is on others/2+1 of them, so any ceil(others/2)
// include one. With AckPrimary one will do.
func (s *Server) copySources(others int) int {
	if s.cfg.Ack == AckPrimary {
		return 1
	}
	return max(1, (others+1)/2)
}

// promotionSources is how many of a partition's other ready owners a
// primary just made must catch up from to hold every write the cluster
// acknowledged: with AckAll such a write is on a majority of the n ready
// owners, so this node together with n-1-n/2 of the others (at least one)
// holds it.
func promotionSources(others int) int {
	n := 1 + others
	return max(1, n-1-n/2)
}

// streamHandler serves GET /kv/internal/stream?partition=N once this
// node's map is as new as the copier's: a write this node took before is
// in the stream, and a primary that replicates here later learns the
// newer map from the answer and replicates to the copier too (see
// replicate).
func (s *Server) streamHandler() *service.Stream[store.Version] {
	return &service.Stream[store.Version]{CK: s.ck, Drops: s.drops,
		MapWait: senderMapWait, WriteTimeout: s.cfg.WriteTimeout, Check: s.streamable, Log: s.log}
}

// streamable refuses (503) to stream partition p unless this node holds
// it in full: one still copying it, or catching up after a restart or a
// promotion, would hand on what it lacks as if it were all. The copier
// tries another source.
func (s *Server) streamable(p int) error {
	if st := s.parts.Get(p); !st.Filled || st.CatchingUp {
		return errUnavailable(fmt.Sprintf("partition %d is still being copied or caught up here", p))
	}
	return nil
}
