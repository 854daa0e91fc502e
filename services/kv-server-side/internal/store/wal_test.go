package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// crash stops s as a crash of the process would leave it: the writer's
// acknowledged writes are in the log, which is neither applied to bbolt
// nor closed cleanly.
func crash(t *testing.T, s *Store) {
	t.Helper()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	close(s.applyStop)
	<-s.applyDone
	s.isShut.Store(true)
	s.wal.f.Close()
	if err := s.db.Close(); err != nil {
		t.Fatal(err)
	}
}

// holdLog opens a store whose applier never runs on its own, so that
// writes stay in the log until the test checkpoints.
func holdLog(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{ApplyInterval: time.Hour})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

// checkHolds checks that s holds exactly want's records, by Get and by
// Scan in small pages.
func checkHolds(t *testing.T, s *Store, want map[int]map[string]Record) {
	t.Helper()
	for p, keys := range want {
		for k, w := range keys {
			r, found, err := s.Get(p, k)
			if err != nil || !found || r.Version != w.Version || r.Deleted != w.Deleted || !bytes.Equal(r.Value, w.Value) {
				t.Fatalf("get %d/%s: %+v found=%v err=%v; want %+v", p, k, r, found, err, w)
			}
		}
		after, n := "", 0
		for {
			page, err := s.Scan(p, after, 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for _, r := range page {
				if r.Key <= after {
					t.Fatalf("scan of %d: %q after %q", p, r.Key, after)
				}
				if w := keys[r.Key]; r.Version != w.Version || r.Deleted != w.Deleted || !bytes.Equal(r.Value, w.Value) {
					t.Fatalf("scan of %d: %+v, want %+v", p, r, w)
				}
				after = r.Key
				n++
			}
		}
		if n != len(keys) {
			t.Fatalf("scan of %d: %d records, want %d", p, n, len(keys))
		}
	}
}

// model records what a store should hold after each acknowledged write.
type model struct {
	mu   sync.Mutex
	recs map[int]map[string]Record
	max  uint64
}

func (m *model) write(t *testing.T, s *Store, p int, r Record) {
	t.Helper()
	if _, err := s.Write(p, r); err != nil {
		t.Error(err)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.recs == nil {
		m.recs = map[int]map[string]Record{}
	}
	if m.recs[p] == nil {
		m.recs[p] = map[string]Record{}
	}
	if cur, ok := m.recs[p][r.Key]; !ok || cur.Version.Less(r.Version) {
		m.recs[p][r.Key] = r
	}
	m.max = max(m.max, r.Version.Seq)
}

func TestAcknowledgedWritesSurviveACrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv.db")
	s := holdLog(t, path)
	var m model
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 50 {
				seq := uint64(w*1000 + i + 1)
				r := rec(fmt.Sprintf("k-%d", i%20), fmt.Sprintf("v-%d", seq), 1, seq)
				r.Deleted = i%7 == 0
				if r.Deleted {
					r.Value = nil
				}
				m.write(t, s, i%4, r)
				if w == 0 && i == 25 {
					// Part of the writes in bbolt, the rest only in the log.
					if err := s.checkpoint(); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	crash(t, s)

	s = holdLog(t, path)
	if !s.HadData() || s.MaxSeq() != m.max {
		t.Fatalf("after the crash: HadData %v, MaxSeq %d; want true, %d", s.HadData(), s.MaxSeq(), m.max)
	}
	checkHolds(t, s, m.recs)
	// The replay put the log in bbolt: a second crash loses nothing either.
	m.write(t, s, 1, rec("after", "v", 2, 1))
	crash(t, s)
	s = open(t, path)
	checkHolds(t, s, m.recs)
}

// frameEnd returns the offset after the last whole frame of a segment.
func frameEnd(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	off := 0
	for {
		_, _, n, why := decodeFrame(b[off:])
		if why != "" {
			return off
		}
		off += n
	}
}

func segments(t *testing.T, path string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(path+walDirSuffix, "*"+walSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestATornLogTailIsCut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv.db")
	s := holdLog(t, path)
	var m model
	for i := range 10 {
		m.write(t, s, 0, rec(fmt.Sprint("k", i), "v", 1, uint64(i+1)))
	}
	crash(t, s)
	segs := segments(t, path)
	last := segs[len(segs)-1]
	end := frameEnd(t, last)
	// A frame whose payload never made it to the disk.
	f, err := os.OpenFile(last, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{100, 0, 0, 0, 1, 2, 3, 4, 11, 0, 0, 0, 0, 0, 0, 0, 'x'}, int64(end)); err != nil {
		t.Fatal(err)
	}
	f.Close()

	s = holdLog(t, path)
	checkHolds(t, s, m.recs)
	m.write(t, s, 0, rec("k-after", "v", 1, 100))
	crash(t, s)
	s = open(t, path)
	checkHolds(t, s, m.recs)
}

func TestDamageBeforeTheLogsEndIsReported(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv.db")
	s := holdLog(t, path)
	big := strings.Repeat("v", 1<<20)
	for i := range 6 { // more than one segment
		if _, err := s.Write(0, rec(fmt.Sprint("k", i), big, 1, uint64(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	crash(t, s)
	segs := segments(t, path)
	if len(segs) < 2 {
		t.Fatalf("%d log segments, want several", len(segs))
	}
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	b[walHeaderBytes+10] ^= 0xff
	if err := os.WriteFile(segs[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "checksum") {
		if s != nil {
			s.Close()
		}
		t.Fatalf("open with a damaged segment before the last: %v, want a checksum error", err)
	}
}

func TestAppliedLogSegmentsAreRemoved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv.db")
	s := holdLog(t, path)
	var m model
	big := strings.Repeat("v", 1<<20)
	for i := range 10 {
		m.write(t, s, i%2, rec(fmt.Sprint("k", i), big, 1, uint64(i+1)))
	}
	if n := len(segments(t, path)); n < 3 {
		t.Fatalf("%d log segments before the checkpoint, want several", n)
	}
	if err := s.checkpoint(); err != nil {
		t.Fatal(err)
	}
	if n := len(segments(t, path)); n != 1 {
		t.Fatalf("%d log segments after the checkpoint, want only the current one", n)
	}
	checkHolds(t, s, m.recs)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path)
	checkHolds(t, s, m.recs)
}

func TestScanMergesTheLogAndBbolt(t *testing.T) {
	s := holdLog(t, filepath.Join(t.TempDir(), "kv.db"))
	defer s.Close()
	var m model
	for i := 0; i < 20; i += 2 {
		m.write(t, s, 5, rec(fmt.Sprintf("k%02d", i), "old", 1, uint64(i+1)))
	}
	if err := s.checkpoint(); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 20; i += 2 {
		m.write(t, s, 5, rec(fmt.Sprintf("k%02d", i), "odd", 1, uint64(i+1)))
	}
	for i := 0; i < 20; i += 6 { // newer versions of keys bbolt holds
		m.write(t, s, 5, rec(fmt.Sprintf("k%02d", i), "new", 2, 1))
	}
	tomb := rec("k04", "", 2, 2)
	tomb.Value, tomb.Deleted = nil, true
	m.write(t, s, 5, tomb)
	checkHolds(t, s, m.recs)
}

func TestADropIsNotUndoneByTheLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv.db")
	s := holdLog(t, path)
	var m model
	for i := range 10 {
		m.write(t, s, 3, rec(fmt.Sprint("gone", i), "v", 1, uint64(i+1)))
		m.write(t, s, 4, rec(fmt.Sprint("kept", i), "v", 1, uint64(i+1)))
	}
	if dropped, err := s.DropIf(3, func() bool { return true }); !dropped || err != nil {
		t.Fatalf("drop: %v %v", dropped, err)
	}
	delete(m.recs, 3)
	m.write(t, s, 4, rec("late", "v", 1, 50))
	crash(t, s)
	s = open(t, path)
	if page, err := s.Scan(3, "", 10); err != nil || len(page) != 0 {
		t.Fatalf("the dropped partition holds %v (%v)", page, err)
	}
	checkHolds(t, s, m.recs)
}

// TestReadsWhileApplying reads each key right after its write while the
// applier keeps moving the log into bbolt: a read never misses an
// acknowledged write.
func TestReadsWhileApplying(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "kv.db"), Options{ApplyInterval: time.Millisecond, ApplyRecords: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := range 300 {
				key := fmt.Sprintf("w%d-k%d", w, i%40)
				seq := uint64(i + 1)
				if _, err := s.Write(w%3, rec(key, "v", 1, seq)); err != nil {
					t.Error(err)
					return
				}
				r, found, err := s.Get(w%3, key)
				if err != nil || !found || r.Version.Less(Version{1, seq}) {
					t.Errorf("read %s after writing seq %d: %+v found=%v err=%v", key, seq, r, found, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
