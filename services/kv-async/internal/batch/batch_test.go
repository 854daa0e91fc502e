package batch

import (
	"bytes"
	"errors"
	"net/http"
	"testing"

	"pgregory.net/rapid"
)

func TestRequestRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 20).Draw(t, "n")
		ops := make([]Op, n)
		for i := range ops {
			ops[i].Kind = rapid.SampledFrom([]byte{Set, Delete}).Draw(t, "kind")
			ops[i].Key = rapid.SliceOfN(rapid.Byte(), 1, 64).Draw(t, "key")
			if ops[i].Kind == Set {
				ops[i].Value = rapid.SliceOf(rapid.Byte()).Draw(t, "value")
			}
		}
		got, err := DecodeRequest(AppendRequest(nil, ops))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("%d ops back, want %d", len(got), n)
		}
		for i := range ops {
			if got[i].Kind != ops[i].Kind || !bytes.Equal(got[i].Key, ops[i].Key) || !bytes.Equal(got[i].Value, ops[i].Value) {
				t.Fatalf("op %d: %+v, want %+v", i, got[i], ops[i])
			}
		}
	})
}

func TestAnswerRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 20).Draw(t, "n")
		rs := make([]Result, n)
		for i := range rs {
			rs[i].Code = rapid.SampledFrom([]int{200, 400, 413, 421, 500, 503}).Draw(t, "code")
			if rs[i].Code == http.StatusOK {
				rs[i].Epoch = rapid.Uint64().Draw(t, "epoch")
				rs[i].Seq = rapid.Uint64().Draw(t, "seq")
				rs[i].Existed = rapid.Bool().Draw(t, "existed")
			} else {
				rs[i].Message = rapid.String().Draw(t, "message")
			}
		}
		got, err := DecodeAnswer(AppendAnswer(nil, rs), n)
		if err != nil {
			t.Fatal(err)
		}
		for i := range rs {
			if got[i] != rs[i] {
				t.Fatalf("result %d: %+v, want %+v", i, got[i], rs[i])
			}
		}
	})
}

// Every truncation of a valid batch, and every single-byte change that
// breaks its structure, is refused with ErrMalformed and no panic.
func TestDecodeRefusesDamage(t *testing.T) {
	b := AppendRequest(nil, []Op{{Kind: Set, Key: []byte("k"), Value: []byte("v")}, {Kind: Delete, Key: []byte("x")}})
	for i := 0; i < len(b); i++ {
		if _, err := DecodeRequest(b[:i]); !errors.Is(err, ErrMalformed) {
			t.Errorf("truncated to %d bytes: %v, want ErrMalformed", i, err)
		}
	}
	if _, err := DecodeRequest(append(b[:len(b):len(b)], 0)); !errors.Is(err, ErrMalformed) {
		t.Errorf("trailing byte: %v", err)
	}
	cases := map[string][]byte{
		"format 2":     {2, 1, 'S', 1, 'k', 0},
		"zero ops":     {1, 0},
		"too many ops": AppendRequest(nil, make([]Op, MaxOps+1)),
		"unknown kind": {1, 1, 'X', 1, 'k'},
		"long key":     {1, 1, 'D', 200, 200, 8}, // 131,144 > MaxKey
	}
	for name, b := range cases {
		if _, err := DecodeRequest(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	ans := AppendAnswer(nil, []Result{{Code: 200, Epoch: 1, Seq: 2}})
	if _, err := DecodeAnswer(ans, 2); !errors.Is(err, ErrMalformed) {
		t.Errorf("answer with 1 result for 2 ops: %v", err)
	}
	if _, err := DecodeAnswer([]byte{1, 1, 0x80, 0x80, 0x04}, 1); !errors.Is(err, ErrMalformed) { // code 65536
		t.Errorf("answer with status 65536: %v", err)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add(AppendRequest(nil, []Op{{Kind: Set, Key: []byte("k"), Value: []byte("v")}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		ops, err := DecodeRequest(b)
		if err != nil {
			return
		}
		if again := AppendRequest(nil, ops); !bytes.Equal(again, b) {
			// Uvarints have one shortest form; a decoded batch encodes
			// back to the same bytes unless the input used a longer one.
			if _, err := DecodeRequest(again); err != nil {
				t.Fatalf("re-encoded batch does not decode: %v", err)
			}
		}
	})
}
