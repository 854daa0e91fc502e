package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kit/fanout"
	"clusterkit.dev/services/kv-server-side/internal/store"
)

// Migration. A node that gains a partition streams it from the event's
// CopyFrom (GET /kv/stream) and merges it by version; writes that reach it
// meanwhile, as new owner, are merged the same way, so none is lost. A node
// promoted to primary first catches up from the partition's other owners,
// since with AckAll a write may have been acknowledged without it. A node
// restarting with data catches up each partition it owns, for the writes it
// missed while down. The handler returns once the data is in: with
// make-before-break moves that is what tells the cluster the node is ready.
const (
	copyAttempts = 3
	copyBackoff  = 200 * time.Millisecond
	streamPage   = 512
	// streamChunk is how many bytes of keys and values a stream writes
	// per extension of its write deadline.
	streamChunk    = 1 << 20
	mergeBatch     = 1024
	mergeBatchSize = 1 << 20
	kindCopy       = "copy"
	kindCatchUp    = "catchup"
)

// handleEvent is the node's partition event handler. The library runs the
// events of one partition in order, and different partitions concurrently.
func (s *Server) handleEvent(ctx context.Context, ev clusterkit.PartitionEvent) error {
	p := ev.Partition
	if ev.NewRole != clusterkit.RolePrimary {
		s.unc.forget(p)
	}
	switch {
	case ev.NewRole == clusterkit.RoleNone:
		gen := s.parts.set(p, partState{role: clusterkit.RoleNone})
		s.drops.schedule(p, gen)
		return nil
	case ev.OldRole == clusterkit.RoleNone:
		s.parts.set(p, partState{role: ev.NewRole})
		err := s.fill(ctx, ev)
		if err != nil && (ctx.Err() != nil || ev.NewRole == clusterkit.RoleJoining) {
			// Not filled: the library retries a joining copy, and the
			// event that cancelled this one finishes the job.
			return err
		}
		if err != nil {
			s.log.Error("no owner could provide the partition; serving what this node has",
				"partition", p, "err", err)
		}
		s.parts.set(p, partState{role: ev.NewRole, filled: true})
		return err
	case !s.parts.get(p).filled:
		// The copy of an earlier gain was cancelled (the node became an
		// owner before it finished): take the data from the owners now.
		s.parts.set(p, partState{role: ev.NewRole})
		s.catchUp(ctx, p, "", 0)
		if err := ctx.Err(); err != nil {
			return err
		}
		s.markGained(p)
		s.parts.set(p, partState{role: ev.NewRole, filled: true})
		return nil
	case ev.NewRole == clusterkit.RolePrimary:
		s.parts.set(p, partState{role: ev.NewRole, filled: true, catchingUp: true})
		if err := s.promotionCatchUp(ctx, p); err != nil {
			return err
		}
		s.parts.set(p, partState{role: ev.NewRole, filled: true})
		return nil
	default:
		// Demoted to replica, or a joining node made a replica: it
		// already holds the data.
		s.parts.set(p, partState{role: ev.NewRole, filled: true})
		return nil
	}
}

// fill brings a gained partition's data in: from ev.CopyFrom, or from the
// other owners when CopyFrom fails; and, the first time after a restart,
// from every other owner as well, for the writes missed while down (as
// primary, from enough of them to hold every acknowledged write, retrying
// until it does). It returns ctx's error when cancelled.
func (s *Server) fill(ctx context.Context, ev clusterkit.PartitionEvent) error {
	p := ev.Partition
	restart := s.store.HadData() && !s.gainedBefore(p)
	var err error
	switch {
	case ev.CopyFrom != nil:
		// An acknowledged write is on a majority of the owners, not on
		// each: the copy must merge that many of them, or it could miss
		// one (a source back from a restart may not have caught up).
		need := s.copySources(p)
		err = s.copyFrom(ctx, p, ev.CopyFrom)
		got := 0
		if err == nil {
			got = 1
		} else if ctx.Err() == nil {
			s.log.Warn("copy failed; trying the other owners", "partition", p, "from", ev.CopyFrom.ID, "err", err)
		}
		if ctx.Err() == nil && (got < need || restart) {
			enough := need - got
			if restart {
				enough = 0 // from every owner, for the writes missed while down
			}
			got += s.catchUp(ctx, p, ev.CopyFrom.ID, max(enough, 0))
		}
		if got >= need {
			err = nil
		} else if ctx.Err() == nil {
			err = fmt.Errorf("copy partition %d: %d of the owners provided it, %d needed (from %s: %v)", p, got, need, ev.CopyFrom.ID, err)
		}
	case restart && ev.NewRole == clusterkit.RolePrimary:
		// A primary back from a restart may have missed writes a promoted
		// replica took meanwhile: it must hold every acknowledged write
		// before it serves, as a promoted one does.
		err = s.promotionCatchUp(ctx, p)
	case restart:
		s.catchUp(ctx, p, "", 0)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		s.markGained(p)
	}
	return err
}

// gainedBefore reports whether the node has filled partition p since the
// server started.
func (s *Server) gainedBefore(p int) bool {
	s.gainedMu.Lock()
	defer s.gainedMu.Unlock()
	return s.gained[p]
}

func (s *Server) markGained(p int) {
	s.gainedMu.Lock()
	defer s.gainedMu.Unlock()
	s.gained[p] = true
}

// copyFrom copies partition p from node, retrying a failed copy.
func (s *Server) copyFrom(ctx context.Context, p int, node *clusterkit.Node) error {
	var err error
	for attempt := 0; attempt < copyAttempts; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(copyBackoff << (attempt - 1))
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		if err = s.copyOnce(ctx, p, node, kindCopy); err == nil || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// catchUp merges partition p from each of its other ready owners in the
// current map but skip, all at once, and returns how many copies
// succeeded. With enough > 0 it returns as soon as enough succeeded,
// cancelling the others. A failed source is logged: catching up is best
// effort.
func (s *Server) catchUp(ctx context.Context, p int, skip string, enough int) int {
	return fanout.FirstN(ctx, s.catchUpSources(p, skip), enough, func(ctx context.Context, id string) error {
		node := s.ck.Node(id)
		if node == nil {
			return fmt.Errorf("%s is no member", id)
		}
		err := s.copyOnce(ctx, p, node, kindCatchUp)
		if err != nil && ctx.Err() == nil {
			s.log.Info("catch-up source failed", "partition", p, "from", id, "err", err)
		}
		return err
	})
}

// copySources is how many of p's n ready owners (primary and replicas,
// this node excepted) a copy must merge to hold every write acknowledged
// with AckAll: such a write is on n/2+1 of them, so any ceil(n/2) include
// one. With AckPrimary one will do.
func (s *Server) copySources(p int) int {
	if s.cfg.Ack == AckPrimary {
		return 1
	}
	parts := s.ck.Partitions()
	if p >= len(parts) {
		return 1
	}
	n := 0
	for _, id := range append([]string{parts[p].PrimaryNode}, parts[p].ReplicaNodes...) {
		if id != "" && id != s.self {
			n++
		}
	}
	return max(1, (n+1)/2)
}

// catchUpSources returns the ready owners of p in the current map but this
// node and skip.
func (s *Server) catchUpSources(p int, skip string) []string {
	parts := s.ck.Partitions()
	if p >= len(parts) {
		return nil
	}
	part := &parts[p]
	var ids []string
	for _, id := range append([]string{part.PrimaryNode}, part.ReplicaNodes...) {
		if id != s.self && id != skip && id != "" {
			ids = append(ids, id)
		}
	}
	return ids
}

// promotionCatchUp brings partition p, of which this node was just made
// primary, up to every write the cluster acknowledged. With AckAll such a
// write is on a majority of the n ready owners, so this node together with
// n-1-n/2 of the others (at least one) holds it; catching up from that many
// sources suffices, and the copies from owners that do not answer are
// cancelled then. It retries until enough sources succeeded or ctx ends.
func (s *Server) promotionCatchUp(ctx context.Context, p int) error {
	for attempt := 0; ; attempt++ {
		ids := s.catchUpSources(p, "")
		n := 1 + len(ids)
		enough := min(len(ids), max(1, n-1-n/2))
		if enough == 0 || s.catchUp(ctx, p, "", enough) >= enough {
			return nil
		}
		s.log.Warn("promoted primary could not catch up from enough owners; retrying", "partition", p, "needed", enough)
		t := time.NewTimer(copyBackoff << min(attempt, 4))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// copyOnce streams partition p from node and merges it into the store.
func (s *Server) copyOnce(ctx context.Context, p int, node *clusterkit.Node, kind string) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CopyTimeout)
	defer cancel()
	records, size, err := s.pull(ctx, p, node)
	res := resultOK
	if err != nil {
		res = resultError
	}
	s.m.migrations.WithLabelValues(kind, res).Inc()
	s.m.migrationTime.Observe(time.Since(start).Seconds())
	s.m.migratedRecords.Add(float64(records))
	s.m.migratedBytes.Add(float64(size))
	if err == nil {
		s.log.Info("copied partition", "partition", p, "from", node.ID, "kind", kind,
			"records", records, "bytes", size, "took", time.Since(start))
	}
	return err
}

// pull reads partition p's stream from node, merging as it goes. A stream
// cut short fails the copy; what was merged before stays, being correct. A
// source that sends nothing for CopyIdleTimeout (before its answer's
// header or mid-stream) fails the copy with errStreamIdle.
func (s *Server) pull(ctx context.Context, p int, node *clusterkit.Node) (records, size int, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	idle := time.AfterFunc(s.cfg.CopyIdleTimeout, func() {
		cancel(fmt.Errorf("%w: %s sent nothing for %v", errStreamIdle, node.ID, s.cfg.CopyIdleTimeout))
	})
	defer idle.Stop()
	defer func() {
		if cause := context.Cause(ctx); err != nil && errors.Is(cause, errStreamIdle) {
			err = fmt.Errorf("%w (%v)", cause, err)
		}
	}()
	resp, err := s.send(ctx, node, http.MethodGet, "/kv/stream?partition="+strconv.Itoa(p), nil)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	idle.Reset(s.cfg.CopyIdleTimeout)
	resp.Body = &idleReader{ReadCloser: resp.Body, t: idle, d: s.cfg.CopyIdleTimeout}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return 0, 0, fmt.Errorf("%s answered %s: %s", node.ID, resp.Status, msg)
	}
	fr := newFrameReader(resp.Body)
	batch := make([]store.Entry, 0, mergeBatch)
	batchSize := 0
	flush := func() error {
		_, err := s.store.Merge(batch)
		batch, batchSize = batch[:0], 0
		return err
	}
	for {
		rec, err := fr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if ferr := flush(); ferr != nil {
				return records, size, ferr
			}
			return records, size, fmt.Errorf("stream from %s: %w", node.ID, err)
		}
		records++
		n := len(rec.Key) + len(rec.Value)
		size += n
		batchSize += n
		batch = append(batch, store.Entry{Partition: p, Record: rec})
		if len(batch) >= mergeBatch || batchSize >= mergeBatchSize {
			if err := flush(); err != nil {
				return records, size, err
			}
		}
	}
	return records, size, flush()
}

// errStreamIdle fails a copy whose source stopped sending.
var errStreamIdle = errors.New("copy stream idle")

// idleReader rearms t for d whenever a read returns data.
type idleReader struct {
	io.ReadCloser
	t *time.Timer
	d time.Duration
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if n > 0 {
		r.t.Reset(r.d)
	}
	return n, err
}

// handleStream serves GET /kv/stream?partition=N: every record of partition
// N this node holds, tombstones included, as record frames and an end
// frame. It reads the store a page at a time, so a slow reader never holds
// a transaction open. An error mid-stream ends the answer without the end
// frame, which the receiver detects.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	count := s.ck.PartitionCount()
	raw := r.URL.Query().Get("partition")
	p, err := strconv.Atoi(raw)
	if err != nil || p < 0 || p >= count {
		s.writeError(w, errBadRequest(fmt.Sprintf("partition must be a number from 0 to %d, got %q", count-1, raw)))
		return
	}
	// Stream once this node's map is as new as the copier's: a write this
	// node took before is in the stream, and a primary that replicates
	// here later learns the newer map from the answer and replicates to
	// the copier too (see replicate).
	s.awaitSenderMap(r)
	// A node that does not hold the partition in full (still copying it,
	// or catching up after a restart or a promotion) would hand on what
	// it lacks as if it were all: the copier tries another source.
	if st := s.parts.get(p); !st.filled || st.catchingUp {
		s.writeError(w, errUnavailable(fmt.Sprintf("partition %d is still being copied or caught up here", p)))
		return
	}
	s.drops.streaming(p, 1)
	defer s.drops.streaming(p, -1)

	// The answer may take long as a whole; each streamChunk of it gets
	// WriteTimeout to go out, so a copier that stops reading holds the
	// stream that long only.
	rc := http.NewResponseController(w)
	extended := 0 // size when the deadline was last extended
	extend := func() { _ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout)) }
	extend()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set(clusterkit.HeaderMapVersion, strconv.FormatUint(s.ck.Version(), 10))
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	var buf []byte
	after, sent, size := "", 0, 0
	defer func() { s.m.streamedBytes.Add(float64(size)) }()
	for {
		recs, err := s.store.Scan(p, after, streamPage)
		if err != nil {
			s.log.Warn("stream aborted", "partition", p, "err", err)
			return
		}
		if len(recs) == 0 {
			break
		}
		for i := range recs {
			if size-extended >= streamChunk {
				extend()
				extended = size
			}
			buf = appendRecordFrame(buf[:0], &recs[i])
			if _, err := bw.Write(buf); err != nil {
				return
			}
			size += len(recs[i].Key) + len(recs[i].Value)
		}
		sent += len(recs)
		after = recs[len(recs)-1].Key
		if r.Context().Err() != nil {
			return
		}
	}
	extend()
	_, _ = bw.Write(appendEndFrame(buf[:0], sent))
	_ = bw.Flush()
}

// dropper deletes the data of partitions this node lost, DropAfter later,
// unless the node owns the partition again by then or is streaming it.
type dropper struct {
	s *Server

	mu      sync.Mutex
	closed  bool
	timers  map[int]*time.Timer
	streams map[int]int
	wg      sync.WaitGroup
}

func newDropper(s *Server) *dropper {
	return &dropper{s: s, timers: map[int]*time.Timer{}, streams: map[int]int{}}
}

// schedule drops partition p after DropAfter if its state is still
// generation gen.
func (d *dropper) schedule(p int, gen uint64) {
	if d.s.cfg.DropAfter < 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	if t := d.timers[p]; t != nil {
		t.Stop()
	}
	d.timers[p] = time.AfterFunc(d.s.cfg.DropAfter, func() { d.fire(p, gen) })
}

// streaming counts the streams of partition p in progress.
func (d *dropper) streaming(p, delta int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.streams[p] += delta
	if d.streams[p] == 0 {
		delete(d.streams, p)
	}
}

func (d *dropper) fire(p int, gen uint64) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	delete(d.timers, p)
	d.wg.Add(1)
	d.mu.Unlock()
	defer d.wg.Done()

	// The condition runs in the store's writer, between the writes
	// submitted before and after: a write made as owner under a newer map
	// was submitted after that map was published, so either it comes
	// after the drop or the condition sees the map that made it.
	dropped, err := d.s.store.DropIf(p, func() bool {
		if st := d.s.parts.get(p); st.gen != gen || st.role != clusterkit.RoleNone {
			return false
		}
		if parts := d.s.ck.Partitions(); p < len(parts) && owner(&parts[p], d.s.self) {
			return false
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.streams[p] == 0
	})
	switch {
	case err != nil:
		d.s.log.Warn("drop lost partition", "partition", p, "err", err)
	case dropped:
		d.s.m.dropped.Inc()
		d.s.log.Info("dropped lost partition", "partition", p)
	}
}

// close cancels pending drops and waits for a running one.
func (d *dropper) close() {
	d.mu.Lock()
	d.closed = true
	for _, t := range d.timers {
		t.Stop()
	}
	d.mu.Unlock()
	d.wg.Wait()
}
