package faults

import (
	"os"
	"sort"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

func TestDebugPrefix(t *testing.T) {
	h, err := LoadHistory(os.Getenv("H"))
	if err != nil {
		t.Skip(err)
	}
	key := os.Getenv("K")
	var ops []Op
	for _, op := range h.Ops {
		if op.Key == key {
			ops = append(ops, op)
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].Call < ops[j].Call })
	illegal := func(n int) bool {
		return porcupine.CheckOperationsTimeout(registerModel, porcupineHistory(ops[:n]), 20*time.Second) == porcupine.Illegal
	}
	lo, hi := 1, len(ops)
	for lo < hi {
		m := (lo + hi) / 2
		if illegal(m) {
			hi = m
		} else {
			lo = m + 1
		}
	}
	t.Logf("first illegal prefix: %d ops; last call %.3f", lo, float64(ops[lo-1].Call)/1e9)
	for _, op := range ops[max(0, lo-40):lo] {
		t.Logf("%-5s %-10s %-6s [%.3f %.3f] via %s %s", op.Kind, op.Value, op.Result, float64(op.Call)/1e9, float64(op.Return)/1e9, op.Node, op.Err)
	}
}
