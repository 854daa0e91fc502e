package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// openLazy opens a store whose applier waits an hour: every write stays in
// the log, and in memory, until Close or a Scan.
func openLazy(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{applyEvery: time.Hour})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// crashImage copies the files of the store at dir/kv.db, as a power cut
// would leave them once the writes that returned are on disk, to a new
// directory, and returns the path of its kv.db.
func crashImage(t *testing.T, dir string) string {
	t.Helper()
	to := t.TempDir()
	copyFile(t, filepath.Join(dir, "kv.db"), filepath.Join(to, "kv.db"))
	if err := os.Mkdir(filepath.Join(to, "kv.wal"), 0o755); err != nil {
		t.Fatal(err)
	}
	segs, err := filepath.Glob(filepath.Join(dir, "kv.wal", "*.wal"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("log segments: %v, %v", segs, err)
	}
	for _, seg := range segs {
		copyFile(t, seg, filepath.Join(to, "kv.wal", filepath.Base(seg)))
	}
	return filepath.Join(to, "kv.db")
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestWritesReturnedSurviveACrash(t *testing.T) {
	dir := t.TempDir()
	s := openLazy(t, filepath.Join(dir, "kv.db"))
	for i := range 100 {
		if _, err := s.Write(i%4, rec(fmt.Sprint("k", i), fmt.Sprint("v", i), 1, 7)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Write(1, Record{Key: "k1", Version: Version{2, 7}, Deleted: true}); err != nil {
		t.Fatal(err)
	}
	// A partition dropped between writes: replay must not bring back what
	// it held before the drop.
	if _, err := s.Merge([]Entry{{9, rec("old", "x", 1, 1)}, {9, rec("kept", "x", 1, 1)}}); err != nil {
		t.Fatal(err)
	}
	if dropped, err := s.DropIf(9, nil); !dropped || err != nil {
		t.Fatalf("drop: %v, %v", dropped, err)
	}
	if _, err := s.Write(9, rec("kept", "y", 2, 1)); err != nil {
		t.Fatal(err)
	}
	if n := s.pendingCount(); n < 100 {
		t.Fatalf("%d records pending: the writes were applied to bbolt, the test checks the log", n)
	}

	c := open(t, crashImage(t, dir))
	if !c.HadData() {
		t.Fatal("a store with a log to replay reports no data")
	}
	for i := range 100 {
		r, found, err := c.Get(i%4, fmt.Sprint("k", i))
		switch {
		case err != nil || !found:
			t.Fatalf("k%d lost: found=%v err=%v", i, found, err)
		case i == 1:
			if !r.Deleted || r.Version != (Version{2, 7}) {
				t.Fatalf("k1: the delete was lost: %+v", r)
			}
		case string(r.Value) != fmt.Sprint("v", i):
			t.Fatalf("k%d holds %q", i, r.Value)
		}
	}
	if _, found, _ := c.Get(9, "old"); found {
		t.Fatal("a record of a dropped partition came back")
	}
	if r := mustGet(t, c, 9, "kept"); string(r.Value) != "y" {
		t.Fatalf("write after the drop: %+v", r)
	}
	// The replayed log is in bbolt now; its segments are gone.
	assertLogEmpty(t, c.log.dir)
}

func TestTornLogTailIsCut(t *testing.T) {
	dir := t.TempDir()
	s := openLazy(t, filepath.Join(dir, "kv.db"))
	for i := range 10 {
		if _, err := s.Write(0, rec(fmt.Sprint("k", i), "v", 1, 1)); err != nil {
			t.Fatal(err)
		}
	}
	image := crashImage(t, dir)
	segs, _ := filepath.Glob(filepath.Join(filepath.Dir(image), "kv.wal", "*.wal"))
	last := segs[len(segs)-1]
	// An entry cut short by the crash, never acknowledged.
	var entry bytes.Buffer
	entry.Write([]byte{200, 0, 0, 0, 1, 2, 3, 4, 11, 0, 0, 0, 0, 0, 0, 0})
	entry.WriteString("only part of the payload")
	f, err := os.OpenFile(last, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(entry.Bytes()); err != nil {
		t.Fatal(err)
	}
	f.Close()

	c := open(t, image)
	for i := range 10 {
		mustGet(t, c, 0, fmt.Sprint("k", i))
	}
	if _, err := c.Write(0, rec("after", "v", 1, 1)); err != nil {
		t.Fatalf("write after replaying a torn log: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = open(t, image)
	mustGet(t, c, 0, "after")
}

func TestDamagedLogIsReported(t *testing.T) {
	dir := t.TempDir()
	s := openLazy(t, filepath.Join(dir, "kv.db"))
	for i := range 3 {
		if _, err := s.Write(0, rec(fmt.Sprint("k", i), "v", 1, 1)); err != nil {
			t.Fatal(err)
		}
	}
	image := crashImage(t, dir)
	segs, _ := filepath.Glob(filepath.Join(filepath.Dir(image), "kv.wal", "*.wal"))
	// A second segment after the first one's end: damage in the first is
	// no longer a torn tail.
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	b[walHeaderBytes+2] ^= 0xff
	if err := os.WriteFile(segs[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(segmentPath(filepath.Dir(segs[0]), 4), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(image, Options{}); err == nil {
		t.Fatal("a log damaged before its last segment opened without an error")
	}
}

func TestCloseAppliesTheLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kv.db")
	s, err := Open(path, Options{applyEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(3, rec("k", "v", 1, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	assertLogEmpty(t, filepath.Join(dir, "kv.wal"))
	if err := os.RemoveAll(filepath.Join(dir, "kv.wal")); err != nil {
		t.Fatal(err)
	}
	// Without its log, the file alone holds the write.
	s = open(t, path)
	if r := mustGet(t, s, 3, "k"); string(r.Value) != "v" {
		t.Fatalf("after reopen: %+v", r)
	}
}

func TestScanReturnsPendingWrites(t *testing.T) {
	s := openLazy(t, filepath.Join(t.TempDir(), "kv.db"))
	if _, err := s.Merge([]Entry{{2, rec("a", "1", 1, 1)}, {2, rec("b", "2", 1, 1)}}); err != nil {
		t.Fatal(err)
	}
	if s.pendingCount() != 2 {
		t.Fatalf("%d records pending, want 2", s.pendingCount())
	}
	got, err := s.Scan(2, "", 10)
	if err != nil || len(got) != 2 || got[0].Key != "a" || got[1].Key != "b" {
		t.Fatalf("scan: %+v, %v", got, err)
	}
}

func TestWriteRefusesStaleVersionsOfPendingAndAppliedRecords(t *testing.T) {
	s := openLazy(t, filepath.Join(t.TempDir(), "kv.db"))
	if _, err := s.Write(0, rec("k", "new", 5, 1)); err != nil {
		t.Fatal(err)
	}
	for _, applied := range []bool{false, true} {
		if applied {
			if err := s.applyRound(); err != nil || s.pendingCount() != 0 {
				t.Fatalf("apply: %v, %d pending", err, s.pendingCount())
			}
		}
		if v, err := s.Write(0, rec("k", "stale", 4, 9)); err != nil || v != (Version{5, 1}) {
			t.Fatalf("applied=%v: stale write: holds %v, %v", applied, v, err)
		}
		// Two writes of one key in one merge: the newer one counts.
		n, err := s.Merge([]Entry{{0, rec("j", "second", 2, 1)}, {0, rec("j", "first", 1, 1)}})
		if err != nil || (!applied && n != 1) {
			t.Fatalf("applied=%v: merge: %d, %v", applied, n, err)
		}
		if r := mustGet(t, s, 0, "k"); string(r.Value) != "new" {
			t.Fatalf("applied=%v: k holds %+v", applied, r)
		}
		if r := mustGet(t, s, 0, "j"); string(r.Value) != "second" {
			t.Fatalf("applied=%v: j holds %+v", applied, r)
		}
	}
}

func TestFailedLogFailsWrites(t *testing.T) {
	s := openLazy(t, filepath.Join(t.TempDir(), "kv.db"))
	// Closing the segment under the log makes the next append fail.
	s.log.mu.Lock()
	for s.log.filling > 0 {
		s.log.cond.Wait()
	}
	s.log.f.Close()
	s.log.mu.Unlock()
	if _, err := s.Write(0, rec("k", "v", 1, 1)); err == nil {
		t.Fatal("a write the log could not hold succeeded")
	}
	if _, err := s.Write(0, rec("j", "v", 1, 1)); err == nil || errors.Is(err, ErrClosed) {
		t.Fatalf("a write after the log failed: %v, want the log's error", err)
	}
	if _, found, _ := s.Get(0, "k"); found {
		t.Fatal("a write the log refused is readable")
	}
}

// pendingCount returns the number of records not yet applied to bbolt.
func (s *Store) pendingCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.pending)
}

// assertLogEmpty fails unless the log in dir holds one segment and no
// entry in it (zeros at most).
func assertLogEmpty(t *testing.T, dir string) {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil || len(segs) != 1 {
		t.Fatalf("log segments: %v, %v; want one", segs, err)
	}
	b, err := os.ReadFile(segs[0])
	if err != nil || !allZero(b) {
		t.Fatalf("log segment %s holds entries: %v", segs[0], err)
	}
}

func TestLogReplaysSegmentsWithZeroTails(t *testing.T) {
	dir := t.TempDir()
	var got []string
	replay := func(lsn uint64, payload []byte) error {
		got = append(got, fmt.Sprintf("%d:%s", lsn, payload))
		return nil
	}
	session := func(payloads ...string) {
		t.Helper()
		w, err := openWAL(dir, walOptions{SegmentBytes: 64}, replay)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range payloads {
			lsn, err := w.append([]byte(p))
			if err == nil {
				err = w.sync(lsn)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := w.close(); err != nil {
			t.Fatal(err)
		}
	}
	// Segments of 64 bytes: every second entry starts a new one.
	session("one", "two", "three", "four", "five")
	segs, err := listSegments(dir)
	if err != nil || len(segs) < 2 {
		t.Fatalf("segments %v, %v: want several", segs, err)
	}
	// Zeros after the frames of a segment that is not the last, as the
	// filler leaves them.
	first := segmentPath(dir, segs[0])
	f, err := os.OpenFile(first, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	got = nil
	session("six")
	want := []string{"1:one", "2:two", "3:three", "4:four", "5:five"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("replayed %v, want %v", got, want)
	}

	// Something other than zeros after them is damage.
	f, err = os.OpenFile(first, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := openWAL(dir, walOptions{SegmentBytes: 64}, replay); err == nil {
		t.Fatal("a segment with bytes after its zero tail opened without an error")
	}
}

func TestLogFillsSegmentsWithZerosAhead(t *testing.T) {
	dir := t.TempDir()
	w, err := openWAL(dir, walOptions{}, func(uint64, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	var lsn uint64
	for range 100 {
		if lsn, err = w.append(bytes.Repeat([]byte("x"), 200)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.sync(lsn); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.mu.Lock()
		zeroed, size := w.zeroed, w.size
		w.mu.Unlock()
		if zeroed >= size+zeroAhead/2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the segment is filled to %d, its frames end at %d", zeroed, size)
		}
		time.Sleep(10 * time.Millisecond)
	}
	b, err := os.ReadFile(segmentPath(dir, 1))
	if err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	size := w.size
	w.mu.Unlock()
	if int64(len(b)) < size+zeroAhead/2 || !allZero(b[size:]) {
		t.Fatalf("segment of %d bytes, frames to %d: want zeros after them", len(b), size)
	}
	for off := 0; off < int(size); {
		l, _, n, why := decodeFrame(b[off:])
		if why != "" {
			t.Fatalf("frame at %d: %s", off, why)
		}
		if l == 0 {
			t.Fatalf("frame at %d has LSN 0", off)
		}
		off += n
	}
}
