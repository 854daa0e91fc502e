package server

import (
	"bufio"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"clusterkit.dev/clusterkit"
	knode "clusterkit.dev/services/kit/node"
	"clusterkit.dev/services/kit/stream"
	"clusterkit.dev/services/kv-async/internal/store"
)

// Migration. A node that gains a partition copies it from the event's
// CopyFrom over GET /kv/internal/stream, merging each record by version (newest
// wins), so writes replicated to it during the copy are not lost and a
// copy that is interrupted can simply run again. A node promoted to
// primary first pulls, the same way, what the previous primary had not
// yet shipped to it. Streams start from the receiver's cursor for the
// source when it has one, so a repeated copy sends only what changed.

// How long a promoted primary tries to pull from a previous owner.
const (
	catchUpTimeout     = 10 * time.Second
	deadCatchUpTimeout = time.Second
)

// Stream framing limits: records per frame and key+value bytes per frame.
const (
	frameRecords = 256
	frameBytes   = 1 << 20
)

// handleStream serves GET /kv/internal/stream?partition=N[&since=S&inc=I]: the
// partition's records as gob streamFrames, then an end frame. With inc
// equal to this store's incarnation, only the records after position
// since of this node's index are sent. The stream is one consistent
// snapshot, taken once this node's map is at least the requester's
// (HeaderMapVersion) and every write accepted before is fsynced: a
// former primary has then stopped accepting writes for the partition, so
// the snapshot holds every write it acknowledged.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request, role *clusterkit.Role) error {
	q := r.URL.Query()
	p, err := strconv.Atoi(q.Get("partition"))
	if err != nil || p < 0 || p >= s.ck.PartitionCount() {
		return errorf(http.StatusBadRequest, "partition %q: want a number from 0 to %d", q.Get("partition"), s.ck.PartitionCount()-1)
	}
	var since, inc uint64
	for name, dst := range map[string]*uint64{"since": &since, "inc": &inc} {
		if v := q.Get(name); v != "" {
			if *dst, err = strconv.ParseUint(v, 10, 64); err != nil {
				return errorf(http.StatusBadRequest, "%s %q: want an unsigned integer", name, v)
			}
		}
	}
	if inc != s.store.Incarnation() {
		since = 0
	}
	*role = s.role(s.partition(p))
	s.awaitMap(r.Context(), requestMapVersion(r))
	// A snapshot taken once every write accepted before is fsynced.
	sn, err := s.store.Snapshot(p)
	if err != nil {
		return err
	}
	// The answer may take long as a whole; each frame gets WriteTimeout to
	// go out, so a copier that stops reading holds the stream that long.
	rc := http.NewResponseController(w)
	extend := func() { _ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout)) }
	extend()
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := gob.NewEncoder(bw)
	w.Header().Set("Content-Type", contentTypeGob)
	end := streamEnd{Node: s.self, Inc: s.store.Incarnation(), Head: sn.Head, Cursors: sn.Cursors}
	var frame []store.Record
	size := 0
	var encErr error
	err = sn.Each(since, func(e *store.Entry) bool {
		frame = append(frame, e.Record)
		size += len(e.Record.Key) + len(e.Record.Value)
		end.Records++
		if len(frame) >= frameRecords || size >= frameBytes {
			extend()
			encErr = enc.Encode(streamFrame{Records: frame})
			frame, size = frame[:0], 0
		}
		return encErr == nil
	})
	if err = errors.Join(err, encErr); err != nil {
		return err
	}
	extend()
	if len(frame) > 0 {
		if err := enc.Encode(streamFrame{Records: frame}); err != nil {
			return err
		}
	}
	if err := enc.Encode(streamFrame{End: &end}); err != nil {
		return err
	}
	return bw.Flush()
}

// onPartitionEvent is the server's clusterkit.PartitionEventHandler.
func (s *Server) onPartitionEvent(ctx context.Context, ev clusterkit.PartitionEvent) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()

	switch {
	case ev.OldRole == clusterkit.RoleNone && ev.NewRole != clusterkit.RoleNone:
		if ev.CopyFrom == nil {
			// A new partition, or a restart: nothing to copy. A node that
			// restarts as primary may have missed writes accepted by
			// another primary while it was down: it pulls them first.
			if ev.NewRole == clusterkit.RolePrimary {
				release := s.gate(ev.Partition)
				defer release()
				s.catchUp(ctx, ev)
			}
			return nil
		}
		release := s.gate(ev.Partition)
		defer release()
		return s.copyIn(ctx, ev)
	case ev.NewRole == clusterkit.RolePrimary:
		release := s.gate(ev.Partition)
		defer release()
		s.catchUp(ctx, ev)
	case ev.NewRole == clusterkit.RoleNone:
		s.drops.Schedule(ev.Partition, 0)
	}
	return nil
}

// copyIn copies a gained partition from ev.CopyFrom or, if it fails, from
// the partition's other ready owners, retrying until one copy succeeds or
// CopyTimeout passes.
func (s *Server) copyIn(ctx context.Context, ev clusterkit.PartitionEvent) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CopyTimeout)
	defer cancel()
	pause := minRetryPause
	for {
		sources := []*clusterkit.Node{ev.CopyFrom}
		if p := s.partition(ev.Partition); p != nil {
			for _, id := range append([]string{p.PrimaryNode}, p.ReplicaNodes...) {
				if n := s.ck.Node(id); n != nil && id != s.self && id != ev.CopyFrom.ID && n.State != clusterkit.NodeDead {
					sources = append(sources, n)
				}
			}
		}
		var errs []error
		for _, src := range sources {
			n, err := s.copyFrom(ctx, ev.Partition, src)
			if err == nil {
				s.metrics.migrations.WithLabelValues(kindCopy, outcomeOK).Inc()
				s.log.Info("copied partition", "partition", ev.PartitionID, "from", src.ID, "records", n, "reason", ev.Reason)
				return nil
			}
			errs = append(errs, fmt.Errorf("from %s: %w", src.ID, err))
		}
		err := errors.Join(errs...)
		s.log.Warn("partition copy failed, retrying", "partition", ev.PartitionID, "err", err)
		if !knode.Sleep(ctx, pause) {
			s.metrics.migrations.WithLabelValues(kindCopy, outcomeFailed).Inc()
			return fmt.Errorf("copy %s: %w", ev.PartitionID, err)
		}
		pause = min(2*pause, maxRetryPause)
	}
}

// catchUp runs on a node promoted to primary of a partition: it pulls what
// it has not received yet from every node that ever shipped or copied the
// partition to it (the previous primary among them: a primary probes its
// replicas before it ships, and the probe records it as a source), and
// from the partition's other current owners, which may have received more
// from it. A node the cluster declared dead is tried too, briefly: if it
// was only slow, its writes are saved; if it is really gone, what it had
// not shipped is lost until it returns, which is the price of
// asynchronous replication.
func (s *Server) catchUp(ctx context.Context, ev clusterkit.PartitionEvent) {
	var sources []string
	cursors, _ := s.store.Cursors(ev.Partition)
	for _, c := range cursors {
		sources = append(sources, c.Node)
	}
	if p := s.partition(ev.Partition); p != nil {
		sources = append(sources, p.ReplicaNodes...)
		sources = append(sources, p.JoiningNodes...)
	}
	seen := map[string]bool{s.self: true}
	for _, id := range sources {
		n := s.ck.Node(id)
		if seen[id] || n == nil {
			continue
		}
		seen[id] = true
		timeout := catchUpTimeout
		if n.State == clusterkit.NodeDead {
			timeout = deadCatchUpTimeout
		}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		got, err := s.copyFrom(pctx, ev.Partition, n)
		cancel()
		if err != nil {
			s.metrics.migrations.WithLabelValues(kindCatchUp, outcomeFailed).Inc()
			s.log.Info("catch-up after promotion: source unavailable", "partition", ev.PartitionID, "from", n.ID, "state", n.State, "err", err)
			continue
		}
		s.metrics.migrations.WithLabelValues(kindCatchUp, outcomeOK).Inc()
		if got > 0 {
			s.log.Info("caught up after promotion", "partition", ev.PartitionID, "from", n.ID, "records", got)
		}
	}
	s.repl.notify()
}

// copyFrom streams partition p from node src into the store and records
// the cursors the completed stream proves. It returns the records
// received.
func (s *Server) copyFrom(ctx context.Context, p int, src *clusterkit.Node) (_ int, err error) {
	var since, inc uint64
	cursors, _ := s.store.Cursors(p)
	for _, c := range cursors {
		if c.Node == src.ID && c.Seq > since {
			since, inc = c.Seq, c.Inc
		}
	}
	q := url.Values{"partition": {strconv.Itoa(p)}}
	if inc != 0 {
		q.Set("since", strconv.FormatUint(since, 10))
		q.Set("inc", strconv.FormatUint(inc, 10))
	}
	ctx, idle := stream.WatchIdle(ctx, src.ID, s.cfg.StreamIdleTimeout)
	defer func() { err = idle.Stop(err) }()
	req, err := knode.NewRequest(ctx, s.ck, src, http.MethodGet, pathStream+"?"+q.Encode(), nil)
	if err != nil {
		return 0, err
	}
	resp, err := s.peers.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() {
		_, _ = io.Copy(io.Discard, resp.Body) // lets the connection be reused
		resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return 0, fmt.Errorf("%s answered %s: %s", src.IP, resp.Status, b)
	}
	idle.Alive()
	dec := gob.NewDecoder(bufio.NewReaderSize(idle.Reader(resp.Body), 64<<10))
	total := 0
	for {
		var f streamFrame
		if err := dec.Decode(&f); err != nil {
			return total, fmt.Errorf("stream ended early after %d records: %w", total, err)
		}
		if err := checkRecords(f.Records); err != nil {
			return total, err
		}
		if err := checkFrame(&f); err != nil {
			return total, fmt.Errorf("%s: %w", src.ID, err)
		}
		bytes := 0
		for _, r := range f.Records {
			bytes += len(r.Key) + len(r.Value)
		}
		err := s.store.Change(func(m *store.Change) error {
			for _, rec := range f.Records {
				if _, err := m.Merge(p, rec); err != nil {
					return err
				}
			}
			if f.End == nil {
				return nil
			}
			if err := m.Advance(p, store.Cursor{Node: f.End.Node, Inc: f.End.Inc, Seq: f.End.Head}); err != nil {
				return err
			}
			for _, c := range f.End.Cursors {
				if c.Node != s.self {
					if err := m.Advance(p, c); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		idle.Alive() // the time spent merging is not the source's
		total += len(f.Records)
		s.metrics.migRecords.Add(float64(len(f.Records)))
		s.metrics.migBytes.Add(float64(bytes))
		if f.End != nil {
			if f.End.Records != total {
				return total, fmt.Errorf("stream announced %d records, %d received", f.End.Records, total)
			}
			// The copy is complete: make it durable before the partition is
			// reported ready and its source may drop it.
			return total, s.store.Sync()
		}
	}
}

// dropUnowned schedules the deletion of stored partitions this node does
// not own in its first map: it lost them while it was down.
func (s *Server) dropUnowned() {
	parts, err := s.store.Partitions()
	if err != nil {
		return
	}
	for _, p := range parts {
		if s.role(s.partition(p)) == clusterkit.RoleNone {
			s.drops.Schedule(p, 0)
		}
	}
}
