package main

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestCPUMeterCountsABusyProcess runs a child that spins for a while and
// checks that the meter sees about that much CPU time in it, and none
// in a child that sleeps.
func TestCPUMeterCountsABusyProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc on this system")
	}
	busy := exec.Command("sh", "-c", "while :; do :; done")
	idle := exec.Command("sleep", "10")
	for _, c := range []*exec.Cmd{busy, idle} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
	}
	bm := cpuMeter{pids: []int{busy.Process.Pid}}
	im := cpuMeter{pids: []int{idle.Process.Pid}}
	b0, i0 := bm.sample(), im.sample()
	time.Sleep(1200 * time.Millisecond)
	b1, i1 := bm.sample(), im.sample()
	if got := b1.servers - b0.servers; got < 100*time.Millisecond {
		t.Errorf("busy child used %v of CPU in 1.2 s, want most of it", got)
	}
	if got := i1.servers - i0.servers; got > 50*time.Millisecond {
		t.Errorf("sleeping child used %v of CPU", got)
	}
	if b1.client < b0.client {
		t.Errorf("own CPU time went back: %v then %v", b0.client, b1.client)
	}
	if s := (cpuMeter{}).sample(); s.servers != -1 {
		t.Errorf("meter with no processes: servers = %v, want -1 (unknown)", s.servers)
	}
}
