package server

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestBatchQueueCutsBatchesByCountAndBytes(t *testing.T) {
	q := batchQueue[int]{maxInflight: 2, maxCount: 3, maxBytes: 10, size: func(n int) int { return n }}
	var starts int
	for _, n := range []int{1, 1, 1, 1, 4, 6, 20, 2} {
		if q.push(n) {
			starts++
		}
	}
	if starts != 2 {
		t.Fatalf("push asked for %d senders, want maxInflight = 2", starts)
	}
	if q.bytes != 36 {
		t.Fatalf("queued bytes = %d, want 36", q.bytes)
	}
	want := [][]int{
		{1, 1, 1}, // maxCount
		{1, 4, 6}, // reaches maxBytes with its last item
		{20},      // one item over maxBytes still leaves
		{2},
		{},
	}
	for i, w := range want {
		if got := q.take(); !slices.Equal(got, w) {
			t.Fatalf("batch %d = %v, want %v", i, got, w)
		}
	}
	if q.bytes != 0 || q.len() != 0 {
		t.Fatalf("after the last batch: %d items, %d bytes queued", q.len(), q.bytes)
	}
}

func TestBatchQueueRunSendsEverythingAndStops(t *testing.T) {
	var mu sync.Mutex
	q := batchQueue[int]{maxInflight: 1, maxCount: 4, maxBytes: 1 << 20, size: func(int) int { return 1 }}
	var sent []int
	var batches int
	mu.Lock()
	for i := range 10 {
		if q.push(i) != (i == 0) {
			t.Fatalf("push %d: a sender is started only by the first push", i)
		}
	}
	mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.run(context.Background(), &mu,
			func() (bool, time.Duration) { return q.len() == 0, 0 },
			func(b []int) { batches++; sent = append(sent, b...) })
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return once the queue was empty")
	}
	if want := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}; !slices.Equal(sent, want) || batches != 3 {
		t.Fatalf("sent %v in %d batches, want %v in 3", sent, batches, want)
	}
	if q.active != 0 {
		t.Fatalf("%d senders still counted after run returned", q.active)
	}
}
