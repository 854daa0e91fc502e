package store

import (
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// TestReadsWaitForTheFsyncOfWhatTheySee holds the fsync of Pebble's log
// while an update is in flight: Pebble already shows the update to
// readers, but Get and Scan must not return it before the fsync is done,
// nor may an Update that read it and so wrote nothing.
func TestReadsWaitForTheFsyncOfWhatTheySee(t *testing.T) {
	var hold atomic.Bool
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var released atomic.Bool
	blockSync := errorfs.InjectorFunc(func(op errorfs.Op) error {
		switch op.Kind {
		case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
			if hold.Load() && filepath.Ext(op.Path) == ".log" {
				select {
				case entered <- struct{}{}:
				default:
				}
				<-release
			}
		}
		return nil
	})
	s := openAt(t, errorfs.Wrap(vfs.NewMem(), blockSync), "db", Options{})
	set(t, s, 0, "other", "synced")
	hold.Store(true)
	wrote := make(chan error, 1)
	go func() {
		wrote <- s.Update(func(tx *Tx) error { return tx.Set(0, []byte("k"), []byte("v")) })
	}()
	<-entered // the update is applied and its fsync is running

	type result struct {
		found, released bool
		err             error
	}
	got, scanned, decided := make(chan result, 1), make(chan result, 1), make(chan result, 1)
	go func() {
		_, found, err := s.Get(0, []byte("k"))
		got <- result{found, released.Load(), err}
	}()
	go func() {
		n, err := s.Scan(0, nil, 0, func(k, v []byte) error { return nil })
		scanned <- result{n == 2, released.Load(), err}
	}()
	// An update that reads the key and, seeing it written, writes
	// nothing: what it decided rests on the write in flight.
	go func() {
		var found bool
		err := s.Update(func(tx *Tx) error {
			_, f, err := tx.Get(0, []byte("k"))
			found = f
			return err
		})
		decided <- result{found, released.Load(), err}
	}()
	// A key no update in flight wrote is read at once.
	wantValue(t, s, 0, "other", "synced", true)
	// Give the readers time to return early, which they must not.
	time.Sleep(50 * time.Millisecond)
	released.Store(true)
	hold.Store(false)
	close(release)
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	for what, ch := range map[string]chan result{"Get": got, "Scan": scanned, "an Update that wrote nothing": decided} {
		r := <-ch
		if r.err != nil {
			t.Fatalf("%s: %v", what, r.err)
		}
		if r.found && !r.released {
			t.Fatalf("%s returned the update before its fsync", what)
		}
	}
}
