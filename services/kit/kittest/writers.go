package kittest

import (
	"fmt"
	"strconv"
	"sync"
)

// Writers write new keys from several goroutines until stopped: the load
// a test keeps on a cluster while it changes (a node joins, one dies).
type Writers struct {
	stop chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex
	acked  map[string]string
	failed int
	first  error
}

// StartWriters starts n goroutines, goroutine w setting key
// "<prefix>-<w>-<i>" to "<i>" with set for i = 0, 1, ... until Stop. A set
// that returns nil is acknowledged; one that fails is counted, the test
// decides what failures it tolerates.
func StartWriters(n int, prefix string, set func(w int, key, value string) error) *Writers {
	ws := &Writers{stop: make(chan struct{}), acked: map[string]string{}}
	for w := range n {
		ws.wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-ws.stop:
					return
				default:
				}
				k, v := fmt.Sprintf("%s-%d-%d", prefix, w, i), strconv.Itoa(i)
				err := set(w, k, v)
				ws.mu.Lock()
				if err == nil {
					ws.acked[k] = v
				} else {
					ws.failed++
					if ws.first == nil {
						ws.first = err
					}
				}
				ws.mu.Unlock()
			}
		})
	}
	return ws
}

// Stop stops the writers, waits for the sets in flight, and returns the
// values acknowledged, how many sets failed and the first failure.
func (ws *Writers) Stop() (acked map[string]string, failed int, first error) {
	close(ws.stop)
	ws.wg.Wait()
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.acked, ws.failed, ws.first
}
