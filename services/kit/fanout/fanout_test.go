package fanout

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestFirstN(t *testing.T) {
	ids := []string{"a", "b", "c", "d"}
	// "a" fails, "d" hangs until cancelled: two successes out of b and c
	// end the call, and d is cancelled and waited for.
	var cancelled atomic.Bool
	do := func(ctx context.Context, id string) error {
		switch id {
		case "a":
			return errors.New("refused")
		case "d":
			<-ctx.Done()
			cancelled.Store(true)
			return ctx.Err()
		}
		return nil
	}
	if got := FirstN(context.Background(), ids, 2, do); got != 2 {
		t.Fatalf("FirstN(2) = %d", got)
	}
	if !cancelled.Load() {
		t.Fatal("the hanging call was not cancelled and waited for")
	}
	// n = 0 waits for every call: three succeed, the hanging one is
	// ended by the caller's context.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if got := FirstN(ctx, ids, 0, do); got != 2 {
		t.Fatalf("FirstN(0) = %d, want 2 (b and c)", got)
	}
	if got := FirstN(context.Background(), nil, 1, do); got != 0 {
		t.Fatalf("FirstN of no ids = %d", got)
	}
}
