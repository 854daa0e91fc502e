package store

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// The write-ahead log holds every write not yet applied to the bbolt file.
// A write is one entry, numbered by a log sequence number (LSN) that grows
// by one per entry. Entries are appended to segment files named after the
// LSN of their first entry ("00000000000000a1.wal"); a segment is deleted
// once every entry in it is applied to bbolt.
//
// A frame is a 16-byte header, then the payload:
//
//	length  uint32, little endian: payload bytes
//	crc     uint32, little endian: CRC-32C of the lsn and payload bytes
//	lsn     uint64, little endian
//
// A segment is filled with zeros ahead of its last frame, in the
// background, so that an fsync after an append has only data to flush: on
// ext4 an append that grows the file also commits the journal, which
// costs about half again as much CPU and time. Zeros after the last frame
// therefore end every segment.
//
// A crash can leave a torn frame at the end of the last segment (a short
// header or payload, a checksum that does not match): replay stops there
// and the segment is cut back to its last whole frame. Only an
// entry never acknowledged can be torn, because an entry is acknowledged
// once fsynced and a torn frame ends the log: what follows it was written
// later still. Damage anywhere else is reported, never skipped.

const (
	walHeaderBytes = 16
	// maxWALPayload bounds one entry (appendEntries splits larger writes).
	maxWALPayload = 64 << 20
	walSuffix     = ".wal"
	// defaultSegmentBytes is when the log moves on to a new segment.
	defaultSegmentBytes = 64 << 20
	// zeroAhead is how far ahead of the last frame a segment is filled
	// with zeros, and the size of one fill.
	zeroAhead = 1 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errWALClosed is returned by a closed log.
var errWALClosed = errors.New("store: write-ahead log closed")

// walOptions configure a wal.
type walOptions struct {
	// SegmentBytes is the size after which appends go to a new segment.
	SegmentBytes int64
	// NoSync skips the fsync: an entry counts as synced once written to
	// the operating system.
	NoSync bool
}

// wal is an append-only log with group-commit fsync: one fsync covers
// every entry written while the previous one ran. Its methods are safe for
// concurrent use.
type wal struct {
	dir  string
	opts walOptions

	mu   sync.Mutex
	cond *sync.Cond // broadcast when synced, syncing or err changes
	f    *os.File
	size int64
	// segs holds the first LSN of every segment file, ascending; the last
	// one is f.
	segs    []uint64
	last    uint64 // last LSN written to the operating system
	synced  uint64 // last LSN fsynced
	syncing bool
	err     error // sticky: after a failed write or fsync nothing more is acknowledged
	closed  bool
	frame   []byte
	// zeroed is the offset up to which f is filled with zeros or frames;
	// filling, when not 0, is the end of the range the filler is writing
	// zeros to, from zeroed on, where appends must wait.
	zeroed  int64
	filling int64

	// fill wakes the zero filler; fillDone is closed when it returns.
	fill     chan struct{}
	fillDone chan struct{}
}

// openWAL opens the log in dir, creating it if needed. It calls replay, in
// order, with every entry the log holds, cuts a torn tail off the last
// segment, and starts a new segment for the next entry. The segments
// replayed stay until removeThrough deletes them.
func openWAL(dir string, opts walOptions, replay func(lsn uint64, payload []byte) error) (*wal, error) {
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = defaultSegmentBytes
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("store: create log dir: %w", err)
	}
	segs, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	var last uint64
	if len(segs) > 0 {
		last = segs[0] - 1
	}
	for i, first := range segs {
		if first != last+1 {
			return nil, fmt.Errorf("store: log segment %s starts at entry %d, want %d: entries are missing",
				filepath.Base(segmentPath(dir, first)), first, last+1)
		}
		isLast := i == len(segs)-1
		end, err := replaySegment(dir, first, isLast, replay)
		if err != nil {
			return nil, err
		}
		last = end
		if end == first-1 && isLast {
			// An empty last segment: the next one takes its name.
			if err := os.Remove(segmentPath(dir, first)); err != nil {
				return nil, fmt.Errorf("store: remove empty log segment: %w", err)
			}
			segs = segs[:i]
		}
	}
	w := &wal{dir: dir, opts: opts, segs: segs, last: last, synced: last,
		fill: make(chan struct{}, 1), fillDone: make(chan struct{})}
	w.cond = sync.NewCond(&w.mu)
	if err := w.startSegment(last + 1); err != nil {
		return nil, err
	}
	go w.fillLoop()
	return w, nil
}

// listSegments returns the first LSNs of the segment files in dir,
// ascending.
func listSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("store: read log dir: %w", err)
	}
	var segs []uint64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), walSuffix)
		if !ok || e.IsDir() {
			continue
		}
		first, err := strconv.ParseUint(name, 16, 64)
		if err != nil || len(name) != 16 || first == 0 {
			return nil, fmt.Errorf("store: log dir %s: unexpected file %s", dir, e.Name())
		}
		segs = append(segs, first)
	}
	slices.Sort(segs)
	return segs, nil
}

func segmentPath(dir string, first uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%016x%s", first, walSuffix))
}

// replaySegment reads one segment, calls replay with its entries and
// returns the LSN of its last whole entry (first-1 when it has none). A
// torn tail is cut off when the segment is the last one, and is an error
// otherwise.
func replaySegment(dir string, first uint64, isLast bool, replay func(uint64, []byte) error) (end uint64, err error) {
	path := segmentPath(dir, first)
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("store: read log segment: %w", err)
	}
	end = first - 1
	off := 0
	for {
		lsn, payload, n, why := decodeFrame(b[off:])
		if why != "" {
			if off == len(b) || (why == zeroedFrame && !isLast && allZero(b[off:])) {
				return end, nil
			}
			if !isLast {
				return 0, fmt.Errorf("store: log segment %s: %s at offset %d, and later segments exist", filepath.Base(path), why, off)
			}
			return end, truncateFile(path, int64(off))
		}
		if lsn != end+1 {
			return 0, fmt.Errorf("store: log segment %s: entry %d at offset %d, want %d", filepath.Base(path), lsn, off, end+1)
		}
		if err := replay(lsn, payload); err != nil {
			return 0, fmt.Errorf("store: replay log entry %d: %w", lsn, err)
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
		return 0, nil, 0, zeroedFrame
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

// zeroedFrame is decodeFrame's reason for zeros where a frame would start.
const zeroedFrame = "zeroed frame"

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func truncateFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("store: cut torn log tail: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("store: cut torn log tail: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("store: cut torn log tail: %w", err)
	}
	return nil
}

// startSegment creates the segment whose first entry is first and makes
// it the one appended to. w.mu must be held (or w not yet shared).
func (w *wal) startSegment(first uint64) error {
	f, err := os.OpenFile(segmentPath(w.dir, first), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("store: create log segment: %w", err)
	}
	// The new file's name must survive a power loss too.
	if !w.opts.NoSync {
		if err := syncDir(w.dir); err != nil {
			f.Close()
			return fmt.Errorf("store: create log segment: %w", err)
		}
	}
	w.f, w.size, w.zeroed = f, 0, 0
	w.segs = append(w.segs, first)
	w.kickFill()
	return nil
}

// kickFill wakes the zero filler.
func (w *wal) kickFill() {
	select {
	case w.fill <- struct{}{}:
	default:
	}
}

// fillLoop keeps the current segment filled with zeros zeroAhead past its
// last frame, until the log closes. A fill is written and fsynced outside
// w.mu, beyond the offsets appends write at; if appends overtake it, they
// extend the file themselves, as without it.
func (w *wal) fillLoop() {
	defer close(w.fillDone)
	zeros := make([]byte, 256<<10)
	for range w.fill {
		for {
			w.mu.Lock()
			f, from := w.f, max(w.zeroed, w.size)
			if w.closed || w.err != nil || from >= w.size+zeroAhead || from >= w.opts.SegmentBytes {
				w.mu.Unlock()
				break
			}
			end := from + zeroAhead
			w.zeroed, w.filling = from, end
			w.mu.Unlock()
			var err error
			for off := from; off < end && err == nil; off += int64(len(zeros)) {
				_, err = f.WriteAt(zeros, off)
			}
			if err == nil && !w.opts.NoSync {
				err = fdatasync(f)
			}
			w.mu.Lock()
			w.filling = 0
			w.cond.Broadcast()
			if err != nil || w.f != f {
				// A segment closed by a rotation or by close: the next
				// kick fills its successor.
				w.mu.Unlock()
				break
			}
			w.zeroed = end
			w.mu.Unlock()
		}
	}
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
// The entry is not yet durable: call sync.
func (w *wal) append(payload []byte) (uint64, error) {
	if len(payload) > maxWALPayload {
		return 0, fmt.Errorf("store: log entry of %d bytes exceeds %d", len(payload), maxWALPayload)
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
	for w.filling > 0 && w.size+n > w.zeroed {
		// The frame would land where zeros are being written.
		w.cond.Wait()
	}
	if w.closed || w.err != nil {
		return 0, cmp.Or(w.err, errWALClosed)
	}
	lsn := w.last + 1
	fr := w.frame[:0]
	fr = binary.LittleEndian.AppendUint32(fr, uint32(len(payload)))
	fr = append(fr, 0, 0, 0, 0)
	fr = binary.LittleEndian.AppendUint64(fr, lsn)
	fr = append(fr, payload...)
	binary.LittleEndian.PutUint32(fr[4:], crc32.Checksum(fr[8:], crcTable))
	if cap(fr) <= 1<<20 {
		w.frame = fr
	}
	if _, err := w.f.WriteAt(fr, w.size); err != nil {
		// The file may now hold part of the frame: nothing more can be
		// appended after it.
		w.fail(fmt.Errorf("store: write log: %w", err))
		return 0, w.err
	}
	w.size += n
	w.zeroed = max(w.zeroed, w.size)
	if w.zeroed-w.size < zeroAhead/2 {
		w.kickFill()
	}
	w.last = lsn
	if w.opts.NoSync {
		w.synced = lsn
	}
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
	for w.syncing || w.filling > 0 {
		w.cond.Wait()
	}
	if w.err != nil {
		return w.err
	}
	if !w.opts.NoSync {
		if err := fdatasync(w.f); err != nil {
			w.fail(fmt.Errorf("store: fsync log: %w", err))
			return w.err
		}
	}
	w.markSynced(w.last)
	if err := w.f.Close(); err != nil {
		w.fail(fmt.Errorf("store: close log segment: %w", err))
		return w.err
	}
	if err := w.startSegment(w.last + 1); err != nil {
		w.fail(err)
		return w.err
	}
	return nil
}

// markSynced records that every entry up to upto is fsynced. w.mu must
// be held.
func (w *wal) markSynced(upto uint64) {
	if upto > w.synced {
		w.synced = upto
		w.cond.Broadcast()
	}
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
		// Let writers that are about to append join this fsync: an fsync
		// costs far more than a yield, and one covers any number of
		// entries.
		w.mu.Unlock()
		runtime.Gosched()
		w.mu.Lock()
		upto, f := w.last, w.f
		w.mu.Unlock()
		err := fdatasync(f)
		w.mu.Lock()
		w.syncing = false
		w.cond.Broadcast()
		if err != nil {
			w.fail(fmt.Errorf("store: fsync log: %w", err))
			return w.err
		}
		w.markSynced(upto)
	}
	return nil
}

// lastLSN returns the LSN of the last entry written.
func (w *wal) lastLSN() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// removeThrough deletes the segments whose entries are all at or before
// lsn, except the one being appended to.
func (w *wal) removeThrough(lsn uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.segs) > 1 && w.segs[1] <= lsn+1 {
		if err := os.Remove(segmentPath(w.dir, w.segs[0])); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("store: remove applied log segment: %w", err)
		}
		w.segs = w.segs[1:]
	}
	return nil
}

// rotateIfApplied starts a new segment when the current one holds at
// least minSize bytes (and one entry), all at or before lsn, so that
// removeThrough can delete it.
func (w *wal) rotateIfApplied(lsn uint64, minSize int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.err != nil || w.last > lsn || w.size == 0 || w.size < minSize {
		return nil
	}
	return w.rotate()
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
	close(w.fill)
	<-w.fillDone
	return errors.Join(err, w.f.Close())
}
