// Package fanout runs one call per node at once and stops at the first
// that are enough: what a service does when it asks several owners of a
// partition for the same thing (its copy, its catch-up) and needs only
// some of them to answer.
package fanout

import "context"

// FirstN calls do for every id at once and returns how many calls
// succeeded. With n > 0 it returns as soon as n have, cancelling the
// context of the calls still running and waiting for them to return; with
// n = 0 it waits for every call. It returns no goroutine behind it.
func FirstN(ctx context.Context, ids []string, n int, do func(ctx context.Context, id string) error) int {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan bool, len(ids))
	for _, id := range ids {
		go func() { done <- do(ctx, id) == nil }()
	}
	ok, got := 0, 0
	for ; got < len(ids) && (n == 0 || ok < n); got++ {
		if <-done {
			ok++
		}
	}
	// The calls still running see the cancelled context.
	cancel()
	for ; got < len(ids); got++ {
		<-done
	}
	return ok
}
