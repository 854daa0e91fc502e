package batch

import (
	"bytes"
	"testing"

	"pgregory.net/rapid"
)

func genOp() *rapid.Generator[Op] {
	return rapid.Custom(func(t *rapid.T) Op {
		op := Op{Kind: rapid.SampledFrom([]byte{OpRead, OpWrite}).Draw(t, "kind"), Key: rapid.StringN(1, 30, -1).Draw(t, "key")}
		if op.Kind == OpWrite {
			op.Counter = rapid.Uint64().Draw(t, "counter")
			op.Writer = rapid.Uint64().Draw(t, "writer")
			op.Deleted = rapid.Bool().Draw(t, "deleted")
			op.Value = rapid.SliceOfN(rapid.Byte(), 0, 100).Draw(t, "value")
		} else {
			op.Value = []byte{}
		}
		return op
	})
}

func TestOpsAndResultsRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ops := rapid.SliceOfN(genOp(), 0, 20).Draw(t, "ops")
		var b []byte
		for i := range ops {
			b = AppendOp(b, &ops[i])
		}
		got, err := ReadOps(AppendEnd(b, len(ops)))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(ops) {
			t.Fatalf("%d ops decoded, %d sent", len(got), len(ops))
		}
		var rb []byte
		var results []Result
		for i, op := range got {
			w := ops[i]
			if op.Kind != w.Kind || op.Key != w.Key || op.Counter != w.Counter || op.Writer != w.Writer ||
				op.Deleted != w.Deleted || (op.Kind == OpWrite && !bytes.Equal(op.Value, w.Value)) {
				t.Fatalf("op %d: got %+v, want %+v", i, op, w)
			}
			res := Result{Status: StatusAbsent}
			if op.Kind == OpWrite {
				res = Result{Status: StatusFound, Counter: op.Counter, Writer: op.Writer, Deleted: op.Deleted, Value: op.Value}
			}
			results = append(results, res)
			rb = AppendResult(rb, &res)
		}
		back, err := ReadResults(AppendEnd(rb, len(results)), len(results))
		if err != nil {
			t.Fatal(err)
		}
		for i := range results {
			if back[i].Status != results[i].Status || back[i].Counter != results[i].Counter || !bytes.Equal(back[i].Value, results[i].Value) {
				t.Fatalf("result %d: got %+v, want %+v", i, back[i], results[i])
			}
		}
	})
}

func TestCutInputIsAnError(t *testing.T) {
	ops := []Op{{Kind: OpRead, Key: "a"}, {Kind: OpWrite, Key: "b", Counter: 3, Writer: 4, Value: []byte("v")}}
	var b []byte
	for i := range ops {
		b = AppendOp(b, &ops[i])
	}
	b = AppendEnd(b, len(ops))
	for cut := 0; cut < len(b); cut++ {
		if _, err := ReadOps(b[:cut]); err == nil {
			t.Fatalf("request cut at %d of %d bytes decoded", cut, len(b))
		}
	}
	res := AppendEnd(AppendResult(AppendResult(nil, &Result{Status: StatusOK}), &Result{Status: StatusFound, Value: []byte("x")}), 2)
	for cut := 0; cut < len(res); cut++ {
		if _, err := ReadResults(res[:cut], 2); err == nil {
			t.Fatalf("answer cut at %d of %d bytes decoded", cut, len(res))
		}
	}
	if _, err := ReadOps([]byte{'X'}); err == nil {
		t.Fatal("unknown op accepted")
	}
	if _, err := ReadOps(AppendEnd(AppendOp(nil, &ops[0]), 5)); err == nil {
		t.Fatal("miscounted end frame accepted")
	}
}
