package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// ErrIdle fails a copy whose source stopped sending.
var ErrIdle = errors.New("copy source idle")

// Idle fails a copy whose source sends nothing for a while: its context
// (WatchIdle) is cancelled, with an ErrIdle cause, once Alive has not been
// called for the timeout. A copy calls Alive when the source answers and
// reads the stream through Reader, which counts every read that returned
// bytes as a sign of life.
type Idle struct {
	ctx     context.Context
	cancel  context.CancelCauseFunc
	timer   *time.Timer
	timeout time.Duration
}

// WatchIdle returns a context derived from ctx, for the copy from source,
// and its watch, already running. Call Stop when the copy ends.
func WatchIdle(ctx context.Context, source string, timeout time.Duration) (context.Context, *Idle) {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &Idle{ctx: ctx, cancel: cancel, timeout: timeout}
	w.timer = time.AfterFunc(timeout, func() {
		cancel(fmt.Errorf("%w: %s sent nothing for %v", ErrIdle, source, timeout))
	})
	return ctx, w
}

// Alive restarts the timeout: the source has just shown progress, or the
// copy has spent time of its own (merging) that is not the source's.
func (w *Idle) Alive() { w.timer.Reset(w.timeout) }

// Reader returns r, calling Alive after every read that returned bytes.
func (w *Idle) Reader(r io.Reader) io.Reader { return &progressReader{r: r, progress: w.Alive} }

// Stop ends the watch and cancels its context. It returns err, the copy's
// result, and when the watch cut the copy short and err does not say so
// (a read failed on the cancelled request), err wrapped in the ErrIdle
// cause.
func (w *Idle) Stop(err error) error {
	cause := context.Cause(w.ctx)
	w.timer.Stop()
	w.cancel(nil)
	if err != nil && errors.Is(cause, ErrIdle) && !errors.Is(err, ErrIdle) {
		return fmt.Errorf("%w (%v)", cause, err)
	}
	return err
}

// progressReader calls progress after every read that returned bytes.
type progressReader struct {
	r        io.Reader
	progress func()
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.progress()
	}
	return n, err
}
