package store

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// ErrDiskFull is returned by an Update that writes while the disk has less
// than Options.MinFreeBytes available. It matches syscall.ENOSPC too.
var ErrDiskFull = fmt.Errorf("store: disk full: %w", syscall.ENOSPC)

// diskRoom caches the last measure of the free space, and whether Pebble
// failed to flush for want of space.
type diskRoom struct {
	mu      sync.Mutex
	checked time.Time
	avail   uint64

	// flushFull is set when a flush failed with ENOSPC and cleared by
	// the next flush that does not. Pebble retries the flush
	// at once and, when the memtables waiting for it pile up, stalls
	// writes until it succeeds: updates are refused meanwhile rather
	// than left waiting.
	flushFull atomic.Pointer[error]
}

// events returns the Pebble event listener that keeps flushFull.
func (d *diskRoom) events(logger pebble.Logger) *pebble.EventListener {
	return &pebble.EventListener{
		BackgroundError: func(err error) {
			// Pebble retries a failed flush or compaction at once: a
			// full disk would repeat this many times a second. The
			// flushes' state is logged by FlushEnd.
			if !errors.Is(err, syscall.ENOSPC) {
				logger.Errorf("background error: %v", err)
			}
		},
		FlushEnd: func(info pebble.FlushInfo) {
			if errors.Is(info.Err, syscall.ENOSPC) {
				err := info.Err
				if d.flushFull.Swap(&err) == nil {
					logger.Errorf("flush failed: %v; writes are refused until a flush succeeds", err)
				}
				return
			}
			if d.flushFull.Swap(nil) != nil {
				logger.Errorf("a flush succeeded again: writes are accepted")
			}
		},
	}
}

// roomToWrite returns an error matching ErrDiskFull when the disk has less
// than MinFreeBytes available. It measures again when the last measure is
// older than diskCheckEvery, or was less than twice MinFreeBytes.
func (s *Store) roomToWrite() error {
	d := &s.disk
	if err := d.flushFull.Load(); err != nil {
		return fmt.Errorf("%w: Pebble cannot flush: %w", ErrDiskFull, *err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	minFree := s.opts.MinFreeBytes
	if !d.checked.IsZero() && d.avail >= 2*minFree && time.Since(d.checked) < s.opts.diskCheckEvery {
		return nil
	}
	u, err := s.opts.FS.GetDiskUsage(s.dir)
	if err != nil {
		if errors.Is(err, vfs.ErrUnsupported) {
			// A file system that cannot tell (an in-memory one).
			return nil
		}
		return fmt.Errorf("store: measure free space of %s: %w", s.dir, err)
	}
	d.avail, d.checked = u.AvailBytes, time.Now()
	if u.AvailBytes < minFree {
		return fmt.Errorf("%w: %d bytes available in %s, writes need %d", ErrDiskFull, u.AvailBytes, s.dir, minFree)
	}
	return nil
}
