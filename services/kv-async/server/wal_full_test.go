package server

import (
	"errors"
	"os/signal"
	"syscall"
	"testing"
)

// A write the file system refuses half way (a full disk; here the process's
// file size limit, which fails a write the same way at a chosen size) is
// cut off the log and refused alone: the log takes the next entry once
// there is room, and a restart replays exactly the entries acknowledged.
func TestWALGoesOnAfterAWriteTheDiskRefused(t *testing.T) {
	dir := t.TempDir()
	w, _, _ := openTestWAL(t, dir, 0, walOptions{})
	appendN(t, w, 5)

	// Past RLIMIT_FSIZE a write is cut short with EFBIG (and SIGXFSZ,
	// ignored here, instead of ending the process).
	signal.Ignore(syscall.SIGXFSZ)
	defer signal.Reset(syscall.SIGXFSZ)
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	limit := old
	limit.Cur = uint64(w.size) + 10 // room for part of the next entry only
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
		t.Fatal(err)
	}
	_, err := w.append(payload(6))
	if rerr := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); rerr != nil {
		t.Fatal(rerr)
	}
	if !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("append past the limit: %v, want EFBIG", err)
	}

	appendN(t, w, 3) // room again: entries 6..8
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	_, got, order := openTestWAL(t, dir, 0, walOptions{})
	checkReplay(t, got, order, 0, 8)
}
