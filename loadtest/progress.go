package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// progress shows how a run goes while it measures. On a terminal it
// redraws one line about four times a second: round, row, phase, time,
// operations so far, current rate and errors. Elsewhere (a pipe, a CI log,
// a container without a terminal) it writes plain lines: one every
// plainEvery during a phase, and one when the phase ends. Both end each
// phase with the same line.
type progress struct {
	out  io.Writer
	live bool
	// liveEvery and plainEvery are how often the live line is redrawn and
	// a plain line written.
	liveEvery, plainEvery time.Duration

	round, rounds int // the round being measured, from 1, of rounds
}

// newProgress returns a progress writing to out, live when out is a
// terminal.
func newProgress(out io.Writer, rounds int) *progress {
	return &progress{out: out, live: isTerminal(out), liveEvery: 250 * time.Millisecond,
		plainEvery: 10 * time.Second, rounds: rounds}
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// phaseTracker follows one phase for a progress. A nil tracker tracks
// nothing.
type phaseTracker struct {
	p           *progress
	name, phase string
	ops, errors atomic.Int64

	from  time.Time     // start of the measured part
	total time.Duration // length of the measured part
	stop  chan struct{}
	wg    sync.WaitGroup
	width int // of the live line last drawn
}

// phase starts following a phase of the row name; nil for a nil progress.
func (p *progress) phase(name, phase string) *phaseTracker {
	if p == nil {
		return nil
	}
	return &phaseTracker{p: p, name: name, phase: phase}
}

// start begins to report: the phase is measured from from, for total.
func (t *phaseTracker) start(from time.Time, total time.Duration) {
	if t == nil {
		return
	}
	t.from, t.total, t.stop = from, total, make(chan struct{})
	every := t.p.plainEvery
	if t.p.live {
		every = t.p.liveEvery
	}
	t.wg.Add(1)
	go t.report(every)
}

// count records a measured operation that ended with err.
func (t *phaseTracker) count(err error) {
	if t == nil {
		return
	}
	if err != nil {
		t.errors.Add(1)
		return
	}
	t.ops.Add(1)
}

// done stops the reports and writes the phase's final line.
func (t *phaseTracker) done(p phase) {
	if t == nil {
		return
	}
	close(t.stop)
	t.wg.Wait()
	if t.width > 0 {
		fmt.Fprintf(t.p.out, "\r%s\r", strings.Repeat(" ", t.width))
	}
	fmt.Fprintf(t.p.out, "%s: %s ops in %v, %s/s, p50 %s, p99 %s, %d errors\n",
		t.prefix(), thousands(float64(p.Ops)), p.Elapsed, thousands(p.Rate()), ms(p.P50), ms(p.P99), p.Errors)
}

func (t *phaseTracker) prefix() string {
	return fmt.Sprintf("round %d/%d %s %s", t.p.round, t.p.rounds, t.name, t.phase)
}

// report writes a line every tick until stop: live, a redrawn line with
// the rate over the last second; plain, a line with the rate so far.
func (t *phaseTracker) report(every time.Duration) {
	defer t.wg.Done()
	tick := time.NewTicker(every)
	defer tick.Stop()
	type sample struct {
		at  time.Time
		ops int64
	}
	var last []sample // the samples of the last second, oldest first
	for {
		select {
		case <-t.stop:
			return
		case now := <-tick.C:
			ops, errs := t.ops.Load(), t.errors.Load()
			elapsed := now.Sub(t.from)
			if !t.p.live {
				if elapsed > 0 {
					fmt.Fprintf(t.p.out, "%s: %v of %v, %s ops, %s/s, %d errors\n", t.prefix(),
						elapsed.Round(time.Second), t.total, thousands(float64(ops)), thousands(float64(ops)/elapsed.Seconds()), errs)
				}
				continue
			}
			var line string
			if elapsed < 0 {
				line = fmt.Sprintf("%s  warmup, %v to go", t.prefix(), (-elapsed).Round(100*time.Millisecond))
			} else {
				if len(last) == 0 {
					last = append(last, sample{t.from, 0})
				}
				last = append(last, sample{now, ops})
				for len(last) > 1 && now.Sub(last[0].at) > time.Second {
					last = last[1:]
				}
				rate := "-" // until a fifth of a second gives a fair rate
				if d := now.Sub(last[0].at); d >= 200*time.Millisecond {
					rate = thousands(float64(ops-last[0].ops) / d.Seconds())
				}
				line = fmt.Sprintf("%s  %.1fs/%v  %s ops  %s/s  %d errors", t.prefix(),
					min(elapsed, t.total).Seconds(), t.total, thousands(float64(ops)), rate, errs)
			}
			pad := ""
			if n := t.width - len(line); n > 0 {
				pad = strings.Repeat(" ", n)
			}
			fmt.Fprintf(t.p.out, "\r%s%s", line, pad)
			t.width = len(line)
		}
	}
}
