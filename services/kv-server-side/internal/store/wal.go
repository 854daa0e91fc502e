package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// The write-ahead log holds every change not yet applied to the bbolt
// file. A change is one entry, numbered by a log sequence number (LSN)
// that grows by one per entry. Entries are appended to segment files named
// after the LSN of their first entry ("00000000000000a1.wal"); a segment is
// deleted once every entry in it is applied to bbolt.
//
// A frame is a 16-byte header, then the payload:
//
//	length  uint32, little endian: payload bytes
//	crc     uint32, little endian: CRC-32C of the lsn and payload bytes
//	lsn     uint64, little endian
//
// A crash can leave a torn frame at the end of the last segment (a short
// header or payload, a checksum that does not match, zeros: the last
// segment is written full of zeros before it is used): replay stops there
// and the segment is cut back to its last whole frame. Only entries
// that were never acknowledged can be torn, because a write is
// acknowledged once its entry is fsynced, and a torn frame ends the log:
// what follows it was written later still. Damage anywhere else is
// reported, never skipped.

const (
	walHeaderBytes = 16
	// maxWALPayload bounds one entry when reading the log back: an entry
	// is one Write or Merge, and a Merge is at most a replication batch or
	// a page of a partition copy.
	maxWALPayload = 256 << 20
	walSuffix     = ".wal"
	// segmentBytes is the size of a segment: a new one is written full
	// of zeros before it is used, so that appending to it changes no file
	// size and an fdatasync flushes data only, not the file system's
	// journal. Appends go to a new segment once it is full, and the old
	// one is cut back to its frames.
	segmentBytes = 4 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errWALClosed is returned by a closed log.
var errWALClosed = errors.New("store: write-ahead log closed")

// wal is an append-only log. The store's writer is its only appender:
// add frames entries into a buffer and flush writes the buffer with one
// write and one fdatasync, so a group of writes shares both. removeThrough
// may run concurrently (the applier calls it).
type wal struct {
	dir    string
	noSync bool

	// Owned by the appender.
	f    *os.File
	size int64
	last uint64 // LSN of the last entry added
	buf  []byte // frames added and not yet flushed
	err  error  // sticky: after a failed write or fsync nothing more is accepted

	mu     sync.Mutex // guards segs and closed
	segs   []uint64   // first LSN of every segment file, ascending; the last one is f
	closed bool
}

// openWAL opens the log in dir, creating it if needed. It calls replay, in
// order, with every entry after applied (entries up to applied are already
// in bbolt and are skipped), cuts a torn tail off the last segment, and
// starts a new segment for the next entry. The next LSN follows the last
// entry, or applied when the log holds nothing newer. With noSync, flush
// does not fdatasync.
func openWAL(dir string, applied uint64, noSync bool, replay func(lsn uint64, payload []byte) error) (*wal, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("store: create log dir: %w", err)
	}
	segs, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	// Segments wholly at or before applied are no longer needed (their
	// deletion may not have been durable before a crash).
	for len(segs) > 1 && segs[1] <= applied+1 {
		if err := os.Remove(segmentPath(dir, segs[0])); err != nil {
			return nil, fmt.Errorf("store: remove applied log segment: %w", err)
		}
		segs = segs[1:]
	}
	if len(segs) > 0 && segs[0] > applied+1 {
		return nil, fmt.Errorf("store: log segment %s starts at entry %d, but bbolt holds entries only up to %d: entries are missing",
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
				return nil, fmt.Errorf("store: remove empty log segment: %w", err)
			}
			segs = segs[:i]
			break
		}
		if !isLast && segs[i+1] != end+1 {
			return nil, fmt.Errorf("store: log segment %s ends at entry %d but the next one starts at %d",
				filepath.Base(segmentPath(dir, first)), end, segs[i+1])
		}
		last = max(last, end)
	}
	w := &wal{dir: dir, noSync: noSync, segs: segs, last: last}
	if err := w.startSegment(last + 1); err != nil {
		return nil, err
	}
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

// replaySegment reads one segment, calls replay with its entries after
// applied and returns the LSN of its last whole entry (first-1 when it has
// none). A torn tail is cut off when the segment is the last one, and is
// an error otherwise.
func replaySegment(dir string, first, applied uint64, isLast bool, replay func(uint64, []byte) error) (end uint64, err error) {
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
			if off == len(b) {
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
		if lsn > applied {
			if err := replay(lsn, payload); err != nil {
				return 0, fmt.Errorf("store: replay log entry %d: %w", lsn, err)
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

// startSegment creates the segment whose first entry is first, full of
// zeros and fsynced, and makes it the one appended to.
func (w *wal) startSegment(first uint64) error {
	f, err := os.OpenFile(segmentPath(w.dir, first), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("store: create log segment: %w", err)
	}
	if err := zeroFill(f, segmentBytes); err != nil {
		f.Close()
		return fmt.Errorf("store: create log segment: %w", err)
	}
	// The new file's name must survive a power loss too.
	if err := syncDir(w.dir); err != nil {
		f.Close()
		return fmt.Errorf("store: create log segment: %w", err)
	}
	w.mu.Lock()
	w.segs = append(w.segs, first)
	w.mu.Unlock()
	w.f, w.size = f, 0
	return nil
}

// zeroFill writes size zero bytes to f from its start and fsyncs it.
func zeroFill(f *os.File, size int64) error {
	zeros := make([]byte, 256<<10)
	for off := int64(0); off < size; off += int64(len(zeros)) {
		if _, err := f.WriteAt(zeros[:min(int64(len(zeros)), size-off)], off); err != nil {
			return err
		}
	}
	return f.Sync()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// add frames payload as the next entry and returns its LSN. The entry is
// written by the next flush. When the current segment is full, add first
// flushes what is buffered and moves on to a new segment.
func (w *wal) add(payload []byte) (uint64, error) {
	if w.err != nil {
		return 0, w.err
	}
	if len(payload) > maxWALPayload {
		return 0, fmt.Errorf("store: log entry of %d bytes exceeds %d", len(payload), maxWALPayload)
	}
	n := int64(walHeaderBytes + len(payload))
	if pending := w.size + int64(len(w.buf)); pending > 0 && pending+n > segmentBytes {
		if err := w.rotate(); err != nil {
			return 0, err
		}
	}
	lsn := w.last + 1
	start := len(w.buf)
	w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(len(payload)))
	w.buf = append(w.buf, 0, 0, 0, 0)
	w.buf = binary.LittleEndian.AppendUint64(w.buf, lsn)
	w.buf = append(w.buf, payload...)
	binary.LittleEndian.PutUint32(w.buf[start+4:], crc32.Checksum(w.buf[start+8:], crcTable))
	w.last = lsn
	return lsn, nil
}

// flush writes the entries added since the last flush and fdatasyncs the
// segment: once it returns nil they survive a power loss.
func (w *wal) flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) == 0 {
		return nil
	}
	if _, err := w.f.WriteAt(w.buf, w.size); err != nil {
		// The file may now hold part of a frame: nothing more can be
		// appended after it.
		w.err = fmt.Errorf("store: write log: %w", err)
		return w.err
	}
	w.size += int64(len(w.buf))
	w.buf = w.buf[:0]
	if w.noSync {
		return nil
	}
	if err := fdatasync(w.f); err != nil {
		// After a failed fsync the kernel may have dropped the pages:
		// nothing written since the last good one can be trusted.
		w.err = fmt.Errorf("store: fsync log: %w", err)
		return w.err
	}
	return nil
}

// rotate flushes the current segment, cuts off its unused zeros, closes
// it and starts the next.
func (w *wal) rotate() error {
	if err := w.flush(); err != nil {
		return err
	}
	if err := w.f.Truncate(w.size); err != nil {
		w.err = fmt.Errorf("store: cut log segment: %w", err)
		return w.err
	}
	if err := w.f.Sync(); err != nil {
		w.err = fmt.Errorf("store: cut log segment: %w", err)
		return w.err
	}
	if err := w.f.Close(); err != nil {
		w.err = fmt.Errorf("store: close log segment: %w", err)
		return w.err
	}
	if err := w.startSegment(w.last + 1); err != nil {
		w.err = err
		return err
	}
	return nil
}

// removeThrough deletes the segments whose entries are all at or before
// lsn, except the one being appended to.
func (w *wal) removeThrough(lsn uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	for len(w.segs) > 1 && w.segs[1] <= lsn+1 {
		if err := os.Remove(segmentPath(w.dir, w.segs[0])); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("store: remove applied log segment: %w", err)
		}
		w.segs = w.segs[1:]
	}
	return nil
}

// close flushes what was added and closes the log. The appender must have
// stopped. Later calls return errWALClosed.
func (w *wal) close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return errWALClosed
	}
	w.closed = true
	w.mu.Unlock()
	err := w.flush()
	return errors.Join(err, w.f.Close())
}
