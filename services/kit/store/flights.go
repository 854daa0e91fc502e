package store

import "sync"

// A flight is a synced update applied to Pebble whose fsync has not yet
// returned: readers that may have seen its writes wait for it.
type flight struct {
	done chan struct{} // closed when the fsync returned
	err  error         // the fsync's error, set before done is closed
}

// wait waits for f's fsync (nil: nothing to wait for).
func (f *flight) wait() error {
	if f == nil {
		return nil
	}
	<-f.done
	return f.err
}

// flights tracks the synced updates in flight by the keys they wrote and
// the partitions they dropped. An fsync of Pebble's log covers every
// update applied before it, so waiting for the latest flight that touched
// a key waits for every earlier one too.
type flights struct {
	mu    sync.Mutex
	keys  map[string]*flight
	parts map[int]*flight
	last  *flight
}

func (fs *flights) init() {
	fs.keys = map[string]*flight{}
	fs.parts = map[int]*flight{}
}

// add registers a flight for the update writing keys and dropping parts;
// it must be called before the update becomes visible.
func (fs *flights) add(keys []string, parts []int) *flight {
	f := &flight{done: make(chan struct{})}
	fs.mu.Lock()
	for _, k := range keys {
		fs.keys[k] = f
	}
	for _, p := range parts {
		fs.parts[p] = f
	}
	fs.last = f
	fs.mu.Unlock()
	return f
}

// finish records the end of f's fsync and wakes its readers.
func (fs *flights) finish(f *flight, keys []string, parts []int, err error) {
	fs.mu.Lock()
	for _, k := range keys {
		if fs.keys[k] == f {
			delete(fs.keys, k)
		}
	}
	for _, p := range parts {
		if fs.parts[p] == f {
			delete(fs.parts, p)
		}
	}
	if fs.last == f {
		fs.last = nil
	}
	fs.mu.Unlock()
	f.err = err
	close(f.done)
}

// wait waits for the flight that last wrote stored key k or dropped
// partition p (p < 0: none), if any is in flight.
func (fs *flights) wait(k []byte, p int) error {
	fs.mu.Lock()
	f := fs.keys[string(k)]
	if f == nil && p >= 0 {
		f = fs.parts[p]
	}
	fs.mu.Unlock()
	return f.wait()
}

// latest returns the last flight registered, if it is still in flight.
func (fs *flights) latest() *flight {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.last
}
