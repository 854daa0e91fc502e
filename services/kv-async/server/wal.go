package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The write-ahead log: the store's source of truth for every change not
// yet applied to its bbolt file. A change is one entry, numbered by a log
// sequence number (LSN) that grows by one per entry. Entries are appended
// to segment files named after the LSN of their first entry
// ("00000000000000a1.wal"); a segment is deleted once every entry in it is
// applied to bbolt.
//
// A frame is a 16-byte header, then the payload:
//
//	length  uint32, little endian: payload bytes
//	crc     uint32, little endian: CRC-32C of the lsn and payload bytes
//	lsn     uint64, little endian
//
// A crash can leave a torn frame at the end of the last segment (a short
// header or payload, a checksum that does not match, zeros): replay stops
// there and the segment is cut back to its last whole frame. Only entries
// that were never acknowledged can be torn, because an entry is
// acknowledged once written, and a torn frame ends the log: what follows
// it was written later still. Damage anywhere else is reported, never
// skipped.

const (
	walHeaderBytes = 16
	// maxWALPayload bounds one entry: the largest is a replication batch
	// (at most maxBatchBody bytes of records) re-encoded.
	maxWALPayload = maxBatchBody + 1<<20
	walSuffix     = ".wal"
	// defaultSegmentBytes is when the log moves on to a new segment.
	defaultSegmentBytes = 64 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errWALClosed is returned by a closed log.
var errWALClosed = errors.New("write-ahead log closed")

// walOptions configure a wal.
type walOptions struct {
	// SegmentBytes is the size after which appends go to a new segment.
	SegmentBytes int64
	// Window is the sync policy: 0 acknowledges an entry only once it is
	// fsynced (group commit: one fsync covers every entry written while
	// the previous one ran). A positive window acknowledges an entry once
	// it is written to the operating system, which keeps it across a
	// crash of the process, as long as the oldest entry not yet fsynced is
	// younger than the window; a background loop fsyncs continuously.
	Window time.Duration
	// OnSync, if set, is told the entries and duration of each fsync.
	OnSync func(entries uint64, d time.Duration)
}

// wal is an append-only log with group-commit fsync. Its methods are safe
// for concurrent use.
type wal struct {
	dir  string
	opts walOptions

	mu   sync.Mutex
	cond *sync.Cond // broadcast when synced or err changes
	f    *os.File
	size int64
	// segs holds the first LSN of every segment file, ascending; the last
	// one is f.
	segs   []uint64
	last   uint64 // last LSN written to the operating system
	synced uint64 // last LSN fsynced
	// unsyncedSince is no later than the time the oldest entry after
	// synced was written; zero when every entry is synced.
	unsyncedSince time.Time
	syncing       bool
	err           error // sticky: after a failed fsync (or a write that could not be undone) nothing more is acknowledged
	closed        bool
	frame         []byte

	// kick wakes the background syncer (Window > 0).
	kick chan struct{}
	quit chan struct{}
	done chan struct{}
}

// openWAL opens the log in dir, creating it if needed. It calls replay,
// in order, with every entry after applied (entries up to applied are
// already in the store and are skipped), cuts a torn tail off the last
// segment, and starts a new segment for the next entry. The next LSN
// follows the last entry, or applied when the log holds nothing newer.
func openWAL(dir string, applied uint64, opts walOptions, replay func(lsn uint64, payload []byte) error) (*wal, error) {
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = defaultSegmentBytes
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	segs, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	// Segments wholly at or before applied are no longer needed (their
	// deletion may not have been durable before a crash).
	for len(segs) > 1 && segs[1] <= applied+1 {
		if err := os.Remove(segmentPath(dir, segs[0])); err != nil {
			return nil, fmt.Errorf("remove applied log segment: %w", err)
		}
		segs = segs[1:]
	}
	if len(segs) > 0 && segs[0] > applied+1 {
		return nil, fmt.Errorf("log segment %s starts at entry %d, but the store holds entries only up to %d: entries are missing",
			filepath.Base(segmentPath(dir, segs[0])), segs[0], applied)
	}
	last := applied
	for i, first := range segs {
		isLast := i == len(segs)-1
		end, err := replaySegment(dir, first, applied, isLast, replay)
		if err != nil {
			return nil, err
		}
		if end == first-1 && isLast {
			// An empty last segment: the next one takes its name.
			if err := os.Remove(segmentPath(dir, first)); err != nil {
				return nil, fmt.Errorf("remove empty log segment: %w", err)
			}
			segs = segs[:i]
			break
		}
		if !isLast && segs[i+1] != end+1 {
			return nil, fmt.Errorf("log segment %s ends at entry %d but the next one starts at %d",
				filepath.Base(segmentPath(dir, first)), end, segs[i+1])
		}
		last = max(last, end)
	}
	w := &wal{
		dir: dir, opts: opts, segs: segs, last: last, synced: last,
		kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
	}
	w.cond = sync.NewCond(&w.mu)
	if err := w.startSegment(last + 1); err != nil {
		return nil, err
	}
	if opts.Window > 0 {
		go w.syncLoop()
	} else {
		close(w.done)
	}
	return w, nil
}

// listSegments returns the first LSNs of the segment files in dir,
// ascending.
func listSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read log dir: %w", err)
	}
	var segs []uint64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), walSuffix)
		if !ok || e.IsDir() {
			continue
		}
		first, err := strconv.ParseUint(name, 16, 64)
		if err != nil || len(name) != 16 || first == 0 {
			return nil, fmt.Errorf("log dir %s: unexpected file %s", dir, e.Name())
		}
		segs = append(segs, first)
	}
	slices.Sort(segs)
	return segs, nil
}

func segmentPath(dir string, first uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%016x%s", first, walSuffix))
}

// replaySegment reads one segment, calls replay with its entries after
// applied and returns the LSN of its last whole entry (first-1 when it has
// none). A torn tail is cut off when the segment is the last one, and is
// an error otherwise.
func replaySegment(dir string, first, applied uint64, isLast bool, replay func(uint64, []byte) error) (end uint64, err error) {
	path := segmentPath(dir, first)
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read log segment: %w", err)
	}
	end = first - 1
	off := 0
	for {
		lsn, payload, n, why := decodeFrame(b[off:])
		if why != "" {
			if off == len(b) {
				return end, nil
			}
			if !isLast {
				return 0, fmt.Errorf("log segment %s: %s at offset %d, and later segments exist", filepath.Base(path), why, off)
			}
			return end, truncateFile(path, int64(off))
		}
		if lsn != end+1 {
			return 0, fmt.Errorf("log segment %s: entry %d at offset %d, want %d", filepath.Base(path), lsn, off, end+1)
		}
		if lsn > applied {
			if err := replay(lsn, payload); err != nil {
				return 0, fmt.Errorf("replay log entry %d: %w", lsn, err)
			}
		}
		end = lsn
		off += n
	}
}

// decodeFrame parses the frame at the start of b. why is empty for a
// whole frame, else says why b does not start with one.
func decodeFrame(b []byte) (lsn uint64, payload []byte, n int, why string) {
	if len(b) < walHeaderBytes {
		return 0, nil, 0, "short frame header"
	}
	length := binary.LittleEndian.Uint32(b[0:])
	sum := binary.LittleEndian.Uint32(b[4:])
	lsn = binary.LittleEndian.Uint64(b[8:])
	switch {
	case length == 0 && sum == 0 && lsn == 0:
		return 0, nil, 0, "zeroed frame"
	case length > maxWALPayload:
		return 0, nil, 0, fmt.Sprintf("frame length %d over the limit", length)
	case len(b)-walHeaderBytes < int(length):
		return 0, nil, 0, "short frame"
	}
	n = walHeaderBytes + int(length)
	if crc32.Checksum(b[8:n], crcTable) != sum {
		return 0, nil, 0, "frame checksum mismatch"
	}
	return lsn, b[walHeaderBytes:n], n, ""
}

func truncateFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("cut torn log tail: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("cut torn log tail: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("cut torn log tail: %w", err)
	}
	return nil
}

// startSegment creates the segment whose first entry is first and makes
// it the one appended to. w.mu must be held (or w not yet shared).
func (w *wal) startSegment(first uint64) error {
	f, err := os.OpenFile(segmentPath(w.dir, first), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create log segment: %w", err)
	}
	// The new file's name must survive a power loss too.
	if err := syncDir(w.dir); err != nil {
		f.Close()
		return fmt.Errorf("create log segment: %w", err)
	}
	w.f, w.size = f, 0
	w.segs = append(w.segs, first)
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// append writes one entry to the operating system and returns its LSN.
// The entry is not yet acknowledged: call ack.
func (w *wal) append(payload []byte) (uint64, error) {
	if len(payload) > maxWALPayload {
		return 0, fmt.Errorf("log entry of %d bytes exceeds %d", len(payload), maxWALPayload)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.closed:
		return 0, errWALClosed
	case w.err != nil:
		return 0, w.err
	}
	n := int64(walHeaderBytes + len(payload))
	if w.size > 0 && w.size+n > w.opts.SegmentBytes {
		if err := w.rotate(); err != nil {
			return 0, err
		}
	}
	lsn := w.last + 1
	fr := w.frame[:0]
	fr = binary.LittleEndian.AppendUint32(fr, uint32(len(payload)))
	fr = append(fr, 0, 0, 0, 0)
	fr = binary.LittleEndian.AppendUint64(fr, lsn)
	fr = append(fr, payload...)
	binary.LittleEndian.PutUint32(fr[4:], crc32.Checksum(fr[8:], crcTable))
	w.frame = fr
	if _, err := w.f.Write(fr); err != nil {
		// The file may now hold part of the frame. Cut it off and refuse
		// this entry alone (a full disk frees up again); if the cut fails,
		// nothing more can be appended after it.
		err = fmt.Errorf("write log: %w", err)
		if terr := w.f.Truncate(w.size); terr != nil {
			w.fail(errors.Join(err, fmt.Errorf("cut the partial entry: %w", terr)))
			return 0, w.err
		}
		if _, serr := w.f.Seek(w.size, io.SeekStart); serr != nil {
			w.fail(errors.Join(err, fmt.Errorf("cut the partial entry: %w", serr)))
			return 0, w.err
		}
		return 0, err
	}
	w.size += n
	if w.synced == w.last {
		w.unsyncedSince = time.Now()
		if w.opts.Window > 0 {
			select {
			case w.kick <- struct{}{}:
			default:
			}
		}
	}
	w.last = lsn
	return lsn, nil
}

// fail records a sticky error. w.mu must be held.
func (w *wal) fail(err error) {
	if w.err == nil {
		w.err = err
	}
	w.cond.Broadcast()
}

// rotate fsyncs and closes the current segment and starts the next.
// w.mu must be held.
func (w *wal) rotate() error {
	for w.syncing {
		w.cond.Wait()
	}
	if w.err != nil {
		return w.err
	}
	start := time.Now()
	if err := fdatasync(w.f); err != nil {
		w.fail(fmt.Errorf("fsync log: %w", err))
		return w.err
	}
	w.markSynced(w.last, start)
	if err := w.f.Close(); err != nil {
		w.fail(fmt.Errorf("close log segment: %w", err))
		return w.err
	}
	if err := w.startSegment(w.last + 1); err != nil {
		w.fail(err)
		return w.err
	}
	return nil
}

// markSynced records that every entry up to upto, all written by start,
// is fsynced. w.mu must be held.
func (w *wal) markSynced(upto uint64, start time.Time) {
	if upto <= w.synced {
		return
	}
	if w.opts.OnSync != nil {
		w.opts.OnSync(upto-w.synced, time.Since(start))
	}
	w.synced = upto
	if w.synced == w.last {
		w.unsyncedSince = time.Time{}
	} else {
		// What is left was written after the fsync began.
		w.unsyncedSince = start
	}
	w.cond.Broadcast()
}

// sync returns once entry lsn is fsynced. One caller at a time runs the
// fsync, for every entry written so far; the others wait for it and then,
// if their entry was written after it began, one of them runs the next.
func (w *wal) sync(lsn uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.synced < lsn {
		switch {
		case w.err != nil:
			return w.err
		case w.closed:
			return errWALClosed
		case w.syncing:
			w.cond.Wait()
			continue
		}
		w.syncing = true
		// Let writers that are about to append join this fsync: on a busy
		// node an fsync costs far more CPU than a yield, and one covers any
		// number of entries.
		w.mu.Unlock()
		runtime.Gosched()
		w.mu.Lock()
		upto, f, start := w.last, w.f, time.Now()
		w.mu.Unlock()
		err := fdatasync(f)
		w.mu.Lock()
		w.syncing = false
		if err != nil {
			w.fail(fmt.Errorf("fsync log: %w", err))
			return w.err
		}
		w.markSynced(upto, start)
	}
	return nil
}

// ack returns once entry lsn may be acknowledged under the sync policy:
// when it is fsynced or, with a window, while the oldest entry not yet
// fsynced is younger than the window.
func (w *wal) ack(lsn uint64) error {
	if w.opts.Window > 0 {
		w.mu.Lock()
		err, ok := w.err, w.synced >= lsn || time.Since(w.unsyncedSince) <= w.opts.Window
		w.mu.Unlock()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
	}
	return w.sync(lsn)
}

// syncLoop fsyncs what was written, half a window after the oldest entry
// not yet fsynced was (Window > 0): entries gather, and acks do not wait.
func (w *wal) syncLoop() {
	defer close(w.done)
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		w.mu.Lock()
		pending := w.synced < w.last
		w.mu.Unlock()
		if !pending {
			select {
			case <-w.quit:
				return
			case <-w.kick:
			}
		}
		w.mu.Lock()
		wait := time.Until(w.unsyncedSince.Add(w.opts.Window / 2))
		w.mu.Unlock()
		if wait > 0 {
			t.Reset(wait)
			select {
			case <-w.quit:
				return
			case <-t.C:
			}
		}
		w.mu.Lock()
		last := w.last
		w.mu.Unlock()
		if err := w.sync(last); err != nil {
			return // sticky: every later ack fails
		}
	}
}

// lastLSN returns the LSN of the last entry written.
func (w *wal) lastLSN() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// syncedLSN returns the LSN up to which every entry is fsynced.
func (w *wal) syncedLSN() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.synced
}

// removeThrough deletes the segments whose entries are all at or before
// lsn, except the one being appended to.
func (w *wal) removeThrough(lsn uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.segs) > 1 && w.segs[1] <= lsn+1 {
		if err := os.Remove(segmentPath(w.dir, w.segs[0])); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove applied log segment: %w", err)
		}
		w.segs = w.segs[1:]
	}
	return nil
}

// close fsyncs what was written and closes the log. Appends after close
// fail; close is safe to call more than once.
func (w *wal) close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	last := w.last
	w.mu.Unlock()
	err := w.sync(last)
	w.mu.Lock()
	for w.syncing {
		w.cond.Wait()
	}
	w.closed = true
	w.cond.Broadcast()
	w.mu.Unlock()
	if w.opts.Window > 0 {
		close(w.quit)
	}
	<-w.done
	return errors.Join(err, w.f.Close())
}

// abandon closes the log's file without fsyncing it: what was written
// stays with the operating system, as after a crash of the process. For
// tests.
func (w *wal) abandon() {
	w.mu.Lock()
	for w.syncing {
		w.cond.Wait()
	}
	w.closed = true
	w.cond.Broadcast()
	w.mu.Unlock()
	if w.opts.Window > 0 {
		close(w.quit)
	}
	<-w.done
	w.f.Close()
}
