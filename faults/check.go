package faults

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/anishathalye/porcupine"

	"clusterkit.dev/clusterkit"
)

// The porcupine model: one register per key, "" for absent. A write's
// value is unique in a run, so a read names the write it saw.
type regInput struct {
	write bool
	key   string
	value string
}

var registerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(regInput).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		slices.Sort(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in := input.(regInput)
		if in.write {
			return true, in.value
		}
		return output.(string) == state.(string), state
	},
	Equal: func(a, b any) bool { return a.(string) == b.(string) },
	DescribeOperation: func(input, output any) string {
		in := input.(regInput)
		if in.write {
			return fmt.Sprintf("set %s=%s", in.key, in.value)
		}
		return fmt.Sprintf("get %s -> %q", in.key, output.(string))
	},
	DescribeState: func(state any) string { return fmt.Sprintf("%q", state.(string)) },
}

// porcupineHistory turns ops into porcupine's operations. Failed ops took
// no effect and are left out. A Maybe write is still running at the end of
// time (it may take effect at any point after its call) when a read saw its
// value; one that no read saw is left out, which is one of its allowed
// outcomes and keeps the search small.
func porcupineHistory(ops []Op) []porcupine.Operation {
	seen := map[string]bool{}
	for _, op := range ops {
		if op.Kind == Read && op.Result == OK {
			seen[op.Key+"\x00"+op.Value] = true
		}
	}
	var out []porcupine.Operation
	for _, op := range ops {
		in := regInput{write: op.Kind == Write, key: op.Key, value: op.Value}
		switch {
		case op.Result == OK && op.Kind == Read:
			out = append(out, porcupine.Operation{ClientId: op.Client, Input: in, Call: op.Call, Output: op.Value, Return: op.Return})
		case op.Result == OK:
			out = append(out, porcupine.Operation{ClientId: op.Client, Input: in, Call: op.Call, Output: "", Return: op.Return})
		case op.Result == Maybe && op.Kind == Write && seen[op.Key+"\x00"+op.Value]:
			out = append(out, porcupine.Operation{ClientId: op.Client, Input: in, Call: op.Call, Output: "", Return: math.MaxInt64})
		}
	}
	return out
}

// CheckLinearizable checks every key's history. When it is not
// linearizable and htmlPath is not empty, the history is drawn there.
func CheckLinearizable(ops []Op, timeout time.Duration, htmlPath string) (porcupine.CheckResult, error) {
	res, info := porcupine.CheckOperationsVerbose(registerModel, porcupineHistory(ops), timeout)
	if res == porcupine.Illegal && htmlPath != "" {
		if err := porcupine.VisualizePath(registerModel, info, htmlPath); err != nil {
			return res, err
		}
	}
	return res, nil
}

// IllegalKeys names the keys whose own history is not linearizable.
func IllegalKeys(ops []Op, timeout time.Duration) []string {
	byKey := map[string][]Op{}
	for _, op := range ops {
		byKey[op.Key] = append(byKey[op.Key], op)
	}
	var out []string
	for key, kops := range byKey {
		if porcupine.CheckOperationsTimeout(registerModel, porcupineHistory(kops), timeout) == porcupine.Illegal {
			out = append(out, key)
		}
	}
	slices.Sort(out)
	return out
}

// LostWrites counts acknowledged writes that a final read contradicts: for
// each key, the final read returned the value of write F (or nothing), yet
// an acknowledged write of the key began after F had returned (or any
// acknowledged write exists). final maps each key to its final value.
func LostWrites(ops []Op, final map[string]string) []Op {
	writeOf := map[string]Op{}
	for _, op := range ops {
		if op.Kind == Write && op.Result != Failed {
			writeOf[op.Key+"\x00"+op.Value] = op
		}
	}
	var lost []Op
	for _, op := range ops {
		if op.Kind != Write || op.Result != OK {
			continue
		}
		v, ok := final[op.Key]
		if !ok {
			continue
		}
		if v == "" {
			lost = append(lost, op)
			continue
		}
		if f, ok := writeOf[op.Key+"\x00"+v]; ok && f.Value != op.Value && op.Call > f.Return {
			lost = append(lost, op)
		}
	}
	return lost
}

// Window is the longest time with no successful operation of a kind.
type Window struct {
	Writes, Reads time.Duration
}

// Availability returns, for the interval [from, to], the longest time with
// no acknowledged write and with no successful read, over every key
// (cluster-wide) and over the keys of the partitions listed (those a
// fault's targets led; every key when the list is empty or the partitions
// hold none of the keys).
func Availability(ops []Op, from, to int64, partitions []int, partitionCount int) (all, listed Window) {
	in := map[string]bool{}
	inPart := func(key string) bool {
		if len(partitions) == 0 {
			return true
		}
		v, ok := in[key]
		if !ok {
			v = slices.Contains(partitions, clusterkit.PartitionIndex(key, partitionCount))
			in[key] = v
		}
		return v
	}
	gap := func(kind Kind, keep func(string) bool) time.Duration {
		var times []int64
		for _, op := range ops {
			if op.Kind == kind && op.Result == OK && keep(op.Key) && op.Return >= from && op.Return <= to {
				times = append(times, op.Return)
			}
		}
		slices.Sort(times)
		prev, longest := from, int64(0)
		for _, t := range times {
			longest = max(longest, t-prev)
			prev = t
		}
		return time.Duration(max(longest, to-prev))
	}
	any := func(string) bool { return true }
	all = Window{gap(Write, any), gap(Read, any)}
	for _, op := range ops {
		if inPart(op.Key) {
			return all, Window{gap(Write, inPart), gap(Read, inPart)}
		}
	}
	return all, all // the partitions hold none of the keys: nothing to tell apart
}

// Counts are a run's operations by result.
type Counts struct {
	Ops, OK, Failed, Maybe int
}

// Count counts ops in [from, to) by result (all of them when to is 0).
func Count(ops []Op, from, to int64) Counts {
	var c Counts
	for _, op := range ops {
		if op.Call < from || (to > 0 && op.Call >= to) {
			continue
		}
		c.Ops++
		switch op.Result {
		case OK:
			c.OK++
		case Failed:
			c.Failed++
		default:
			c.Maybe++
		}
	}
	return c
}

// Unpromised counts the operations that failed or may have on a partition
// while a fault held a majority of its owners (FaultRecord.NoQuorum): no
// strategy promises them, so the failed share leaves them out.
func Unpromised(h *History) int {
	n := 0
	for _, op := range h.Ops {
		if op.Result == OK {
			continue
		}
		p := clusterkit.PartitionIndex(op.Key, h.Partitions)
		for _, f := range h.Faults {
			heal := f.Heal
			if heal == 0 {
				heal = h.End
			}
			if op.Call >= f.Start && op.Call < heal && slices.Contains(f.NoQuorum, p) {
				n++
				break
			}
		}
	}
	return n
}

// FirstViolation returns the shortest prefix (by call time) of key's
// operations that is not linearizable, or nil when all of them are: its
// last operation is where the history first goes wrong, and the ones
// before it say why.
func FirstViolation(ops []Op, key string, timeout time.Duration) []Op {
	var kops []Op
	for _, op := range ops {
		if op.Key == key {
			kops = append(kops, op)
		}
	}
	slices.SortStableFunc(kops, func(a, b Op) int { return cmp.Compare(a.Call, b.Call) })
	illegal := func(n int) bool {
		return porcupine.CheckOperationsTimeout(registerModel, porcupineHistory(kops[:n]), timeout) == porcupine.Illegal
	}
	if !illegal(len(kops)) {
		return nil
	}
	lo, hi := 1, len(kops)
	for lo < hi {
		if m := (lo + hi) / 2; illegal(m) {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return kops[:lo]
}

// Describe is an operation as a line of a report.
func (op Op) Describe() string {
	s := fmt.Sprintf("%-5s %-12q %-6s [%.3f s, %.3f s] via %s", op.Kind, op.Value, op.Result,
		float64(op.Call)/1e9, float64(op.Return)/1e9, op.Node)
	if op.Err != "" {
		s += " " + op.Err
	}
	return s
}
