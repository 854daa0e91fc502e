package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuMeter reads how much CPU time a set of processes has used so far:
// the nodes of a cluster (or the echo server) and, separately, this
// process, which runs the clients. CPU time per operation does not depend
// on what else the machine is doing, unlike a rate, so it says which side
// a figure is bound by even on a shared machine.
type cpuMeter struct {
	pids []int // the servers'; none when measuring a cluster started elsewhere
}

// cpuSample is one reading of a cpuMeter.
type cpuSample struct {
	servers time.Duration // -1 when unknown
	client  time.Duration
}

// userHZ is the unit of the times in /proc/<pid>/stat: USER_HZ, 100 on
// every Linux architecture's user-space ABI.
const userHZ = 100

func (m cpuMeter) sample() cpuSample {
	s := cpuSample{servers: -1}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		s.client = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if len(m.pids) == 0 {
		return s
	}
	var total time.Duration
	for _, pid := range m.pids {
		d, err := procCPU(pid)
		if err != nil {
			return s
		}
		total += d
	}
	s.servers = total
	return s
}

// procCPU returns the user and system time process pid has used, from
// /proc/<pid>/stat (fields 14 and 15).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the name", pid, len(f))
	}
	// f[0] is field 3 (state), so fields 14 and 15 are f[11] and f[12].
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}
