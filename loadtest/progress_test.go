package main

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Without a terminal, progress writes plain lines: one every plainEvery
// while a phase is measured, and one when it ends, with what it measured;
// no line is redrawn.
func TestProgressPlainLines(t *testing.T) {
	var out strings.Builder
	prog := newProgress(&out, 2)
	if prog.live {
		t.Fatal("a strings.Builder is taken for a terminal")
	}
	prog.plainEvery = 150 * time.Millisecond
	prog.round = 2
	cfg := config{clients: 2, duration: 400 * time.Millisecond, warmup: 100 * time.Millisecond}
	n := 0
	p := runPhase(context.Background(), cfg, cpuMeter{}, prog.phase("kv-x", "write"), func(ctx context.Context, w int, _ *rand.Rand) error {
		time.Sleep(time.Millisecond)
		if w == 1 {
			n++
			if n%10 == 0 {
				return errors.New("every tenth fails")
			}
		}
		return nil
	})
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if strings.Contains(out.String(), "\r") || len(lines) < 2 {
		t.Fatalf("output %q", out.String())
	}
	for _, l := range lines[:len(lines)-1] {
		if !strings.HasPrefix(l, "round 2/2 kv-x write: ") || !strings.Contains(l, " of 400ms, ") {
			t.Errorf("progress line %q", l)
		}
	}
	want := "round 2/2 kv-x write: " + thousands(float64(p.Ops)) + " ops in 400ms, " + thousands(p.Rate()) + "/s, p50 "
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, want) || !strings.HasSuffix(last, ", "+strconv.Itoa(p.Errors)+" errors") || p.Errors == 0 {
		t.Errorf("last line %q, want %q... %d errors", last, want, p.Errors)
	}
}

func TestThousands(t *testing.T) {
	for f, want := range map[float64]string{0: "0", 999.4: "999", 1000: "1,000", 1234567.8: "1,234,568", -12345: "-12,345"} {
		if got := thousands(f); got != want {
			t.Errorf("thousands(%v) = %q, want %q", f, got, want)
		}
	}
}
