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
	"clusterkit.dev/services/kv-sync/internal/store"
)

// Migration. A node that gains a partition streams it from the event's
// CopyFrom (GET /kv/stream) and merges it by version; writes that reach it
// meanwhile, as a joining owner, are merged the same way, so none is lost.
// A node restarting with data catches up each partition it owns, for the
// writes it missed while down (quorum reads would tolerate the gap, but the
// partition would stay one copy short). The handler returns once the data
// is in: with make-before-break moves that is what tells the cluster the
// node is ready to count in quorums.
const (
	copyAttempts   = 3
	copyBackoff    = 200 * time.Millisecond
	streamPage     = 512
	mergeBatch     = 1024
	mergeBatchSize = 1 << 20
	kindCopy       = "copy"
	kindCatchUp    = "catchup"
)

// handleEvent is the node's partition event handler. The library runs the
// events of one partition in order, and different partitions concurrently.
func (s *Server) handleEvent(ctx context.Context, ev clusterkit.PartitionEvent) error {
	p := ev.Partition
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
		if err := s.catchUpEnough(ctx, p); err != nil {
			return err
		}
		s.markGained(p)
		s.parts.set(p, partState{role: ev.NewRole, filled: true})
		return nil
	default:
		// Primary and replica are alike to quorums; a joining node made an
		// owner already holds the data.
		s.parts.set(p, partState{role: ev.NewRole, filled: true})
		return nil
	}
}

// fill brings a gained partition's data in: from ev.CopyFrom and from as
// many of the other owners as hold every acknowledged write between them
// (copySources), or from the other owners alone when CopyFrom fails; and,
// the first time after a restart, from every other owner as well, for the
// writes missed while down. It returns ctx's error when cancelled, and an
// error when too few owners answered (the library retries a joining copy).
func (s *Server) fill(ctx context.Context, ev clusterkit.PartitionEvent) error {
	p := ev.Partition
	restart := s.store.HadData() && !s.gainedBefore(p)
	var err error
	switch {
	case ev.CopyFrom != nil:
		// An acknowledged write is on a majority of the owners, not on
		// each: the copy must merge that many of them, or it could miss
		// one (CopyFrom may be an owner that a majority of the others
		// outvoted, as when the network cut it off from them).
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

// catchUpEnough merges partition p from as many of its other owners as
// hold every acknowledged write (copySources), retrying until they did or
// ctx ends.
func (s *Server) catchUpEnough(ctx context.Context, p int) error {
	for attempt := 0; ; attempt++ {
		need := min(s.copySources(p), len(s.catchUpSources(p, "")))
		if need == 0 || s.catchUp(ctx, p, "", need) >= need {
			return nil
		}
		s.log.Warn("could not catch up from enough owners; retrying", "partition", p, "needed", need)
		t := time.NewTimer(copyBackoff << min(attempt, 4))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// copySources is how many of p's n ready owners (primary and replicas,
// this node excepted) a copy must merge to hold every acknowledged write:
// such a write is on a majority of the owners, so if this node is not one
// of them any ceil(n/2) of the others include one that holds it.
func (s *Server) copySources(p int) int {
	return max(1, (len(s.catchUpSources(p, ""))+1)/2)
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
// cut short fails the copy; what was merged before stays, being correct.
// A source that sends nothing for StreamIdleTimeout, before its answer or
// in the middle of it, fails the copy with errStreamIdle.
func (s *Server) pull(ctx context.Context, p int, node *clusterkit.Node) (records, size int, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	idle := s.cfg.StreamIdleTimeout
	timer := time.AfterFunc(idle, func() {
		cancel(fmt.Errorf("%w: %s sent nothing for %v", errStreamIdle, node.ID, idle))
	})
	defer timer.Stop()
	defer func() {
		if err != nil && errors.Is(context.Cause(ctx), errStreamIdle) && !errors.Is(err, errStreamIdle) {
			err = fmt.Errorf("%w (%v)", context.Cause(ctx), err)
		}
	}()
	resp, err := s.send(ctx, node, http.MethodGet, "/kv/stream?partition="+strconv.Itoa(p))
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	alive := func() { timer.Reset(idle) }
	alive()
	resp.Body = &progressReader{r: resp.Body, progress: alive}
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
		alive() // the time spent merging is not the source's
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
var errStreamIdle = errors.New("copy source idle")

// progressReader calls progress after every read that returned bytes.
type progressReader struct {
	r        io.ReadCloser
	progress func()
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.progress()
	}
	return n, err
}

func (p *progressReader) Close() error { return p.r.Close() }

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
	// node took before is in the stream; a client that writes here later
	// learns this node's newer map from the answer and sends the write to
	// the copier too (see the client's writeQuorum).
	s.awaitClientMap(r, streamMapWait)
	s.drops.streaming(p, 1)
	defer s.drops.streaming(p, -1)

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
		// Progress earns the stream another writeTimeout.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(writeTimeout))
	}
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
