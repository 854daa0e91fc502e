package server

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

// payload is the test entry with LSN lsn: its size varies.
func payload(lsn uint64) []byte {
	return []byte(strings.Repeat(fmt.Sprintf("entry-%d;", lsn), int(lsn%7)+1))
}

// openTestWAL opens the log in dir and returns it with the entries it
// replayed.
func openTestWAL(t *testing.T, dir string, applied uint64, opts walOptions) (*wal, map[uint64][]byte, []uint64) {
	t.Helper()
	got := map[uint64][]byte{}
	var order []uint64
	w, err := openWAL(dir, applied, opts, func(lsn uint64, p []byte) error {
		got[lsn] = append([]byte(nil), p...)
		order = append(order, lsn)
		return nil
	})
	if err != nil {
		t.Fatalf("open log: %v", err)
	}
	return w, got, order
}

// appendN appends n test entries and acks each.
func appendN(t *testing.T, w *wal, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		lsn, err := w.append(payload(w.lastLSN() + 1))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.ack(lsn); err != nil {
			t.Fatal(err)
		}
	}
}

// checkReplay checks that exactly the entries after applied, up to last,
// were replayed, in order and intact.
func checkReplay(t *testing.T, got map[uint64][]byte, order []uint64, applied, last uint64) {
	t.Helper()
	if len(order) != int(last-applied) {
		t.Fatalf("replayed %d entries, want %d (%d..%d)", len(order), last-applied, applied+1, last)
	}
	for i, lsn := range order {
		if lsn != applied+1+uint64(i) || !bytes.Equal(got[lsn], payload(lsn)) {
			t.Fatalf("replayed entry #%d: lsn %d payload %q", i, lsn, got[lsn])
		}
	}
}

func TestWALReplaysAfterApplied(t *testing.T) {
	dir := t.TempDir()
	w, _, order := openTestWAL(t, dir, 0, walOptions{})
	if len(order) != 0 {
		t.Fatalf("a new log replayed %d entries", len(order))
	}
	appendN(t, w, 50)
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.append([]byte("late")); err == nil {
		t.Fatal("append after close succeeded")
	}

	w, got, order := openTestWAL(t, dir, 0, walOptions{})
	checkReplay(t, got, order, 0, 50)
	appendN(t, w, 10) // numbering goes on after a reopen
	if w.lastLSN() != 60 {
		t.Fatalf("last LSN %d, want 60", w.lastLSN())
	}
	w.close()

	w, got, order = openTestWAL(t, dir, 45, walOptions{})
	checkReplay(t, got, order, 45, 60)
	w.close()
	// Everything applied: nothing to replay, and numbering follows applied
	// even when it is ahead of the log.
	w, _, order = openTestWAL(t, dir, 70, walOptions{})
	if len(order) != 0 || w.lastLSN() != 70 {
		t.Fatalf("applied 70: replayed %d, last %d", len(order), w.lastLSN())
	}
	w.close()
}

// TestWALCutsATornTail damages the end of the last segment in every way a
// crash can leave it, and checks that replay keeps every whole entry
// before it, and that the log then continues cleanly.
func TestWALCutsATornTail(t *testing.T) {
	type damage struct {
		name string
		do   func(b []byte, lastFrame int) []byte
	}
	damages := []damage{
		{"garbage appended", func(b []byte, _ int) []byte { return append(b, "\x07garbage\x00\xff"...) }},
		{"zeros appended", func(b []byte, _ int) []byte { return append(b, make([]byte, 4096)...) }},
		{"payload byte flipped", func(b []byte, last int) []byte { b[len(b)-1] ^= 0x40; return b }},
		{"header length raised", func(b []byte, last int) []byte { b[last]++; return b }},
	}
	// Every cut of the last frame, from none of it to all but one byte.
	for cut := 1; cut <= walHeaderBytes+len(payload(20)); cut++ {
		damages = append(damages, damage{fmt.Sprintf("cut %d bytes", cut), func(b []byte, _ int) []byte { return b[:len(b)-cut] }})
	}
	for _, d := range damages {
		t.Run(d.name, func(t *testing.T) {
			dir := t.TempDir()
			w, _, _ := openTestWAL(t, dir, 0, walOptions{})
			appendN(t, w, 20)
			w.close()
			path := segmentPath(filepath.Join(dir), 1)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			lastFrame := len(b) - walHeaderBytes - len(payload(20))
			if err := os.WriteFile(path, d.do(b, lastFrame), 0o600); err != nil {
				t.Fatal(err)
			}
			whole := uint64(20)
			if !strings.Contains(d.name, "appended") {
				whole = 19 // the last entry is damaged
			}
			w, got, order := openTestWAL(t, dir, 0, walOptions{})
			checkReplay(t, got, order, 0, whole)
			if fi, _ := os.Stat(path); fi.Size() != int64(lastFrame)+int64(whole-19)*int64(walHeaderBytes+len(payload(20))) {
				t.Fatalf("segment is %d bytes after the cut", fi.Size())
			}
			appendN(t, w, 5)
			w.close()
			w, got, order = openTestWAL(t, dir, 0, walOptions{})
			checkReplay(t, got, order, 0, whole+5)
			w.close()
		})
	}
}

// TestWALRefusesDamageBeforeItsEnd checks that a damaged entry followed by
// more of the log, or a missing segment, stops the open with an error
// instead of dropping what follows.
func TestWALRefusesDamageBeforeItsEnd(t *testing.T) {
	build := func(t *testing.T) (string, []uint64) {
		dir := t.TempDir()
		w, _, _ := openTestWAL(t, dir, 0, walOptions{SegmentBytes: 512})
		appendN(t, w, 60)
		w.close()
		segs, err := listSegments(dir)
		if err != nil || len(segs) < 4 {
			t.Fatalf("segments %v, %v: want several", segs, err)
		}
		return dir, segs
	}
	t.Run("damaged entry", func(t *testing.T) {
		dir, segs := build(t)
		path := segmentPath(dir, segs[1])
		b, _ := os.ReadFile(path)
		b[walHeaderBytes+2] ^= 1
		os.WriteFile(path, b, 0o600)
		_, err := openWAL(dir, 0, walOptions{}, func(uint64, []byte) error { return nil })
		if err == nil || !strings.Contains(err.Error(), filepath.Base(path)) {
			t.Fatalf("open with a damaged middle segment: %v", err)
		}
	})
	t.Run("missing segment", func(t *testing.T) {
		dir, segs := build(t)
		os.Remove(segmentPath(dir, segs[2]))
		if _, err := openWAL(dir, 0, walOptions{}, func(uint64, []byte) error { return nil }); err == nil {
			t.Fatal("open with a segment missing succeeded")
		}
	})
	t.Run("entries missing before the first segment", func(t *testing.T) {
		dir, segs := build(t)
		os.Remove(segmentPath(dir, segs[0]))
		if _, err := openWAL(dir, 0, walOptions{}, func(uint64, []byte) error { return nil }); err == nil {
			t.Fatal("open without the entries after applied succeeded")
		}
		// Once those entries are applied, the log is whole again.
		w, got, order := openTestWAL(t, dir, segs[1]-1, walOptions{})
		checkReplay(t, got, order, segs[1]-1, 60)
		w.close()
	})
}

func TestWALSegmentsRotateAndGo(t *testing.T) {
	dir := t.TempDir()
	w, _, _ := openTestWAL(t, dir, 0, walOptions{SegmentBytes: 1024})
	appendN(t, w, 200)
	segs, _ := listSegments(dir)
	if len(segs) < 5 {
		t.Fatalf("%d segments of 1 KiB for 200 entries", len(segs))
	}
	// Removing through an LSN inside segment k keeps segment k.
	k := len(segs) / 2
	if err := w.removeThrough(segs[k] + 1); err != nil {
		t.Fatal(err)
	}
	if left, _ := listSegments(dir); len(left) != len(segs)-k || left[0] != segs[k] {
		t.Fatalf("after removing through %d: %v (was %v)", segs[k]+1, left, segs)
	}
	// The segment being written is never removed.
	if err := w.removeThrough(1000); err != nil {
		t.Fatal(err)
	}
	if left, _ := listSegments(dir); len(left) != 1 {
		t.Fatalf("after removing everything: %v", left)
	}
	w.close()
	w, got, order := openTestWAL(t, dir, 200, walOptions{})
	checkReplay(t, got, order, 200, 200)
	w.close()
}

// TestWALGroupCommit has many goroutines append and ack at once: every
// entry is fsynced when acked, and fsyncs are shared.
func TestWALGroupCommit(t *testing.T) {
	var mu sync.Mutex
	syncs, synced := 0, uint64(0)
	opts := walOptions{OnSync: func(n uint64, _ time.Duration) {
		mu.Lock()
		syncs, synced = syncs+1, synced+n
		mu.Unlock()
	}}
	dir := t.TempDir()
	w, _, _ := openTestWAL(t, dir, 0, opts)
	const writers, each = 32, 40
	var wg sync.WaitGroup
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				lsn, err := w.append([]byte(fmt.Sprintf("g%d-%d", g, i)))
				if err == nil {
					err = w.ack(lsn)
				}
				if err == nil && w.syncedLSN() < lsn {
					err = fmt.Errorf("entry %d acked before it was fsynced", lsn)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if synced != writers*each || syncs >= writers*each {
		t.Fatalf("%d entries fsynced by %d fsyncs: want all, in fewer fsyncs", synced, syncs)
	}
	w.close()
	_, got, _ := openTestWAL(t, dir, 0, walOptions{})
	if len(got) != writers*each {
		t.Fatalf("replayed %d entries, want %d", len(got), writers*each)
	}
}

// TestWALWindow checks the window policy: an entry is acked before it is
// fsynced while the oldest entry not fsynced is young, never after; and
// the background loop fsyncs what was written.
func TestWALWindow(t *testing.T) {
	w, _, _ := openTestWAL(t, t.TempDir(), 0, walOptions{Window: time.Hour})
	defer w.close()
	lsn, _ := w.append([]byte("a"))
	if err := w.ack(lsn); err != nil {
		t.Fatal(err)
	}
	// A window of an hour: the loop waits half of it before its fsync.
	if w.syncedLSN() >= lsn {
		t.Fatal("entry fsynced although the window allowed acking it at once")
	}
	// The oldest entry not fsynced is now older than the window: the next
	// ack waits for an fsync, which covers it too.
	w.mu.Lock()
	w.unsyncedSince = time.Now().Add(-2 * time.Hour)
	w.mu.Unlock()
	lsn2, _ := w.append([]byte("b"))
	if err := w.ack(lsn2); err != nil {
		t.Fatal(err)
	}
	if w.syncedLSN() < lsn2 {
		t.Fatalf("acked entry %d with entries older than the window not fsynced (synced %d)", lsn2, w.syncedLSN())
	}

	fast, _, _ := openTestWAL(t, t.TempDir(), 0, walOptions{Window: 20 * time.Millisecond})
	defer fast.close()
	lsn, _ = fast.append([]byte("c"))
	if err := fast.ack(lsn); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for fast.syncedLSN() < lsn && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if fast.syncedLSN() < lsn {
		t.Fatal("the background loop did not fsync a written entry")
	}
}
