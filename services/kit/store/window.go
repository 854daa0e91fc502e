package store

import (
	"sync"
	"time"
)

// window is the Windowed durability's bookkeeping: updates are applied
// without an fsync; a loop fsyncs the log half a window after an update,
// and an update that finds the oldest unsynced update a window old waits
// for an fsync itself.
type window struct {
	s     *Store
	every time.Duration

	mu      sync.Mutex
	updates uint64    // updates applied so far
	oldest  time.Time // when the oldest unsynced update was applied; zero: none

	syncMu sync.Mutex // one fsync at a time
	kick   chan struct{}
	quit   chan struct{}
	done   chan struct{}
}

func startWindow(s *Store) *window {
	w := &window{
		s:     s,
		every: s.opts.SyncWindow,
		kick:  make(chan struct{}, 1),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go w.loop()
	return w
}

// applied notes an update applied without an fsync, and fsyncs at once if
// the oldest unsynced update is a window old.
func (w *window) applied() error {
	now := time.Now()
	w.mu.Lock()
	w.updates++
	first := w.oldest.IsZero()
	if first {
		w.oldest = now
	}
	overdue := now.Sub(w.oldest) >= w.every
	w.mu.Unlock()
	if first {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	if overdue {
		return w.sync()
	}
	return nil
}

// sync fsyncs the log, covering every update applied before it began.
func (w *window) sync() error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	start := time.Now()
	w.mu.Lock()
	n := w.updates
	if w.oldest.IsZero() {
		w.mu.Unlock()
		return nil
	}
	w.mu.Unlock()
	mark := w.s.marks.applied.Load()
	if err := w.s.syncLog(); err != nil {
		return err
	}
	w.s.marks.raise(mark)
	if w.s.opts.OnSync != nil {
		w.s.opts.OnSync(time.Since(start))
	}
	w.mu.Lock()
	if w.updates == n {
		w.oldest = time.Time{}
	} else {
		// Those applied since are younger than start.
		w.oldest = start
	}
	w.mu.Unlock()
	return nil
}

// loop fsyncs half a window after the first unsynced update, until stop.
func (w *window) loop() {
	defer close(w.done)
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-w.quit:
			return
		case <-w.kick:
		}
		for pending := true; pending; {
			t.Reset(w.every / 2)
			select {
			case <-w.quit:
				t.Stop()
				return
			case <-t.C:
			}
			// A failed fsync stops Pebble (see the package
			// documentation); the next update would report it.
			_ = w.sync()
			w.mu.Lock()
			pending = !w.oldest.IsZero()
			w.mu.Unlock()
		}
	}
}

// stop ends the loop; the caller syncs the log afterwards.
func (w *window) stop() error {
	close(w.quit)
	<-w.done
	return nil
}
