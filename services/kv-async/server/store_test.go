package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestRecordEncoding(t *testing.T) {
	for _, s := range []stored{
		{Record: Record{Key: "k", Value: []byte("value"), Version: Version{Epoch: 3, Seq: 1 << 40}, Time: 1700000000123}, local: 9},
		{Record: Record{Key: "k", Version: Version{Epoch: 1, Seq: 2}, Deleted: true, Time: -1}, local: 1},
		{Record: Record{Key: "k", Value: []byte{}}, local: 0},
	} {
		b := s.encode()
		got, err := decodeStored("k", b)
		if err != nil {
			t.Fatalf("decode %+v: %v", s, err)
		}
		if got.Version != s.Version || got.Deleted != s.Deleted || got.Time != s.Time || got.local != s.local || string(got.Value) != string(s.Value) {
			t.Fatalf("round trip: %+v -> %+v", s, got)
		}
		// Every truncation is an error, never a panic or a wrong header.
		for n := 0; n < len(b)-len(s.Value); n++ {
			if h, err := decodeHeader(b[:n]); err == nil {
				t.Fatalf("truncated to %d bytes: header %+v without error", n, h)
			}
		}
	}
}

func TestVersionOrder(t *testing.T) {
	ordered := []Version{{0, 0}, {0, 1}, {0, 99}, {1, 0}, {1, 5}, {2, 1}}
	for i, a := range ordered {
		for j, b := range ordered {
			if got, want := a.Newer(b), i > j; got != want {
				t.Fatalf("%v.Newer(%v) = %v, want %v", a, b, got, want)
			}
		}
		if v, err := ParseVersion(a.String()); err != nil || v != a {
			t.Fatalf("ParseVersion(%q) = %v, %v", a.String(), v, err)
		}
	}
	for _, bad := range []string{"", "1", "a.b", "1.-2", "1.2.3"} {
		if _, err := ParseVersion(bad); err == nil {
			t.Fatalf("ParseVersion(%q) succeeded", bad)
		}
	}
}

func TestStoreGroupCommitAndReopen(t *testing.T) {
	dir := t.TempDir()
	var syncs, ops int
	var mu sync.Mutex
	s, err := OpenStore(dir, StoreOptions{OnSync: func(n uint64, _ time.Duration) {
		mu.Lock()
		syncs, ops = syncs+1, ops+int(n)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	inc := s.Incarnation()
	const writers, each = 16, 50
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				k := fmt.Sprintf("w%d-%d", w, i)
				if _, _, err := s.Write(context.Background(), w%4, k, []byte(k), false, func() (uint64, error) { return 7, nil }); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	if ops != writers*each || syncs >= ops {
		t.Fatalf("%d writes in %d fsyncs: want every write fsynced, several per fsync", ops, syncs)
	}
	mu.Unlock()

	// A refused write changes nothing and does not fail its neighbours.
	refused := errors.New("refused")
	if _, _, err := s.Write(context.Background(), 0, "nope", []byte("x"), false, func() (uint64, error) { return 0, refused }); !errors.Is(err, refused) {
		t.Fatalf("refused write: %v", err)
	}
	// Overwrites and deletes move the key's one index entry.
	for _, del := range []bool{false, true} {
		if _, _, err := s.Write(context.Background(), 0, "w0-0", []byte("again"), del, func() (uint64, error) { return 8, nil }); err != nil {
			t.Fatal(err)
		}
	}
	if _, existed, err := s.Write(context.Background(), 0, "w0-0", nil, true, func() (uint64, error) { return 8, nil }); err != nil || existed {
		t.Fatalf("second delete: existed %v, %v", existed, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Write(context.Background(), 0, "late", nil, false, func() (uint64, error) { return 1, nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after Close: %v, want ErrClosed", err)
	}

	s, err = OpenStore(dir, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Incarnation() != inc {
		t.Fatalf("incarnation %d after reopen, was %d", s.Incarnation(), inc)
	}
	if rec, found, err := s.Get(1, "w1-3"); err != nil || !found || string(rec.Value) != "w1-3" || rec.Version.Epoch != 7 {
		t.Fatalf("w1-3 after reopen: %+v %v %v", rec, found, err)
	}
	if rec, found, _ := s.Get(0, "w0-0"); !found || !rec.Deleted || rec.Version.Epoch != 8 {
		t.Fatalf("w0-0 after delete: %+v, want a tombstone of epoch 8", rec)
	}
	if _, found, _ := s.Get(0, "nope"); found {
		t.Fatal("refused write was stored")
	}
	_ = s.view(func(tx *bolt.Tx) error {
		for p := 0; p < 4; p++ {
			pb, _ := partition(tx, p, false)
			if d, x := pb.data.Stats().KeyN, pb.index.Stats().KeyN; d != x {
				t.Errorf("partition %d: %d records but %d index entries", p, d, x)
			}
		}
		return nil
	})

	if err := s.DropPartition(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	if parts, _ := s.Partitions(); len(parts) != 3 {
		t.Fatalf("partitions after dropping one of 4: %v", parts)
	}
}
