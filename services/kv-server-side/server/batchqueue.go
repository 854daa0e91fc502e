package server

import (
	"context"
	"sync"
	"time"
)

// batchQueue holds the items bound for one node (forwarded ops, replicated
// writes) and cuts them into batches: up to maxInflight senders each take
// a batch, send it as one request and deliver its results, while the items
// that arrive meanwhile queue up for the next batch. A batch holds at most
// maxCount items and stops growing once its items' bytes reach maxBytes
// (it always holds at least one item, whatever its size).
//
// A batchQueue has no lock of its own: its owner guards it with its own
// mutex, under which it also keeps what it knows of the node.
type batchQueue[T any] struct {
	maxInflight, maxCount, maxBytes int
	// size returns the bytes an item counts for.
	size func(T) int

	items  []T
	bytes  int // sum of size over items
	active int // senders running
}

// push queues it and reports whether the caller must start a sender:
// fewer than maxInflight were running, and push counted the new one, which
// calls stop when it returns.
func (q *batchQueue[T]) push(it T) (startSender bool) {
	q.items = append(q.items, it)
	q.bytes += q.size(it)
	if q.active < q.maxInflight {
		q.active++
		return true
	}
	return false
}

// len returns how many items are queued.
func (q *batchQueue[T]) len() int { return len(q.items) }

// take removes and returns the next batch, empty when nothing is queued.
func (q *batchQueue[T]) take() []T {
	n, size := 0, 0
	for n < len(q.items) && n < q.maxCount && (n == 0 || size < q.maxBytes) {
		size += q.size(q.items[n])
		n++
	}
	batch := make([]T, n)
	copy(batch, q.items)
	rest := copy(q.items, q.items[n:])
	clear(q.items[rest:])
	q.items = q.items[:rest]
	q.bytes -= size
	return batch
}

// drain removes and returns every queued item.
func (q *batchQueue[T]) drain() []T {
	items := q.items
	q.items, q.bytes = nil, 0
	return items
}

// stop counts out a sender that returns; its owner's mutex is held.
func (q *batchQueue[T]) stop() { q.active-- }

// run is a sender's loop, shared by forwarding and replication. Under mu
// it asks next whether to stop or to wait before the next batch (next may
// return a batch's wait even when nothing is queued: a probe); otherwise
// it takes a batch, and outside mu hands it to send, which sends it as one
// request and delivers the results. A wait ends early when ctx is done;
// next is asked again after it.
func (q *batchQueue[T]) run(ctx context.Context, mu *sync.Mutex, next func() (stop bool, wait time.Duration), send func([]T)) {
	for {
		mu.Lock()
		stop, wait := next()
		if stop {
			q.stop()
			mu.Unlock()
			return
		}
		if wait > 0 {
			mu.Unlock()
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			continue
		}
		batch := q.take()
		mu.Unlock()
		send(batch)
	}
}
