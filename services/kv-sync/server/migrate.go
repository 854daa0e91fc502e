package server

import (
	"context"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kit/migrate"
	"clusterkit.dev/services/kit/service"
	"clusterkit.dev/services/kv-sync/internal/store"
)

// Migration (package migrate of the kit). A node that gains a partition
// streams it from the event's CopyFrom (GET /kv/internal/stream) and merges
// it by version; writes that reach it meanwhile, as a joining owner, are
// merged the same way, so none is lost. A node restarting with data catches
// up each partition it owns, for the writes it missed while down (quorum
// reads would tolerate the gap, but the partition would stay one copy
// short). The handler returns once the data is in: with make-before-break
// moves that is what tells the cluster the node is ready to count in
// quorums.

// handleEvent is the node's partition event handler. The library runs the
// events of one partition in order, and different partitions concurrently.
func (s *Server) handleEvent(ctx context.Context, ev clusterkit.PartitionEvent) error {
	p := ev.Partition
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
		if err := s.copier.CatchUpEnough(ctx, p, ev.NewRole, copySources); err != nil {
			return err
		}
		s.copier.MarkFilled(p)
		s.parts.Set(p, migrate.State{Role: ev.NewRole, Filled: true})
		return nil
	default:
		// Primary and replica are alike to quorums; a joining node made an
		// owner already holds the data.
		s.parts.Set(p, migrate.State{Role: ev.NewRole, Filled: true})
		return nil
	}
}

// copySources is how many of p's other ready owners (primary and replicas,
// this node excepted) a copy must merge to hold every acknowledged write:
// such a write is on a majority of the owners, so if this node is not one
// of them any ceil(others/2) of the others include one that holds it.
func copySources(others int) int {
	return max(1, (others+1)/2)
}

// streamHandler serves GET /kv/internal/stream?partition=N once this
// node's map is as new as the copier's: a write this node took before is
// in the stream; a client that writes here later learns this node's newer
// map from the answer and sends the write to the copier too (see the
// client's writeQuorum).
func (s *Server) streamHandler() *service.Stream[store.Version] {
	return &service.Stream[store.Version]{CK: s.ck, Drops: s.drops,
		MapWait: streamMapWait, WriteTimeout: writeTimeout, Log: s.log}
}
