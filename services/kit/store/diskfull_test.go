package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

func TestAFullDiskRefusesWritesUntilThereIsRoom(t *testing.T) {
	fs := vfs.NewMem()
	const minFree = 100 << 20
	fs.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: 10 * minFree, TotalBytes: 20 * minFree})
	opts := Options{MinFreeBytes: minFree, diskCheckEvery: -1}
	s := openAt(t, fs, "db", opts)
	for i := range 10 {
		set(t, s, 1, fmt.Sprint(i), "before")
		set(t, s, 2, fmt.Sprint(i), "before")
	}

	fs.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: minFree - 1, TotalBytes: 20 * minFree})
	err := s.Update(func(tx *Tx) error {
		if err := tx.Set(1, []byte("0"), []byte("refused")); err != nil {
			return err
		}
		return tx.SetMeta("m", []byte("refused"))
	})
	if !errors.Is(err, ErrDiskFull) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write on a full disk = %v, want ErrDiskFull and ENOSPC", err)
	}
	// Nothing of the refused update is there; reads work.
	wantValue(t, s, 1, "0", "before", true)
	if _, ok, err := s.Meta("m"); err != nil || ok {
		t.Fatalf("Meta of a refused update = %v, %v", ok, err)
	}
	// Making room is allowed: deletes and drops run.
	if err := s.Update(func(tx *Tx) error { return tx.DropPartition(2) }); err != nil {
		t.Fatalf("drop on a full disk: %v", err)
	}
	if err := s.Update(func(tx *Tx) error { return tx.Delete(1, []byte("9")) }); err != nil {
		t.Fatalf("delete on a full disk: %v", err)
	}
	wantValue(t, s, 2, "0", "", false)
	wantValue(t, s, 1, "9", "", false)

	// Room again: writes are accepted at once.
	fs.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: minFree, TotalBytes: 20 * minFree})
	set(t, s, 1, "0", "after")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, fs, "db", opts)
	wantValue(t, s, 1, "0", "after", true)
	wantValue(t, s, 1, "1", "before", true)
	wantValue(t, s, 2, "1", "", false)
}

func TestAFailedFlushRefusesWritesUntilThereIsRoom(t *testing.T) {
	// The disk fills behind the store's back: Pebble cannot write the
	// table files of a memtable flush. It retries the flush; the store
	// refuses updates until one succeeds, and then takes them again.
	var full atomic.Bool
	var injected atomic.Int64
	enospc := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if full.Load() && filepath.Ext(op.Path) == ".sst" && op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
			injected.Add(1)
			return fmt.Errorf("write %s: %w", op.Path, syscall.ENOSPC)
		}
		return nil
	})
	mem := vfs.NewMem()
	s := openAt(t, errorfs.Wrap(mem, enospc), "db", Options{MemTableSize: 1 << 20})
	value := make([]byte, 1000)
	full.Store(true)
	// Write until a flush has tried to write a table (the first memtable
	// is full), then no more: the memtables that wait for a flush would
	// otherwise stall writes.
	acked := 0
	for i := 0; injected.Load() == 0; i++ {
		if i > 100_000 {
			t.Fatalf("%d writes and no flush", i)
		}
		if err := s.Update(func(tx *Tx) error { return tx.Set(0, fmt.Append(nil, i), value) }); err != nil {
			t.Fatalf("write %d before any flush failed: %v", i, err)
		}
		acked++
	}
	// Pebble reports the failed flush, and retries it until it succeeds.
	for i := 0; s.disk.flushFull.Load() == nil; i++ {
		if i > 10_000 {
			t.Fatal("the failed flush was not reported")
		}
		time.Sleep(time.Millisecond)
	}
	refused := s.Update(func(tx *Tx) error { return tx.Set(0, []byte("refused"), value) })
	if !errors.Is(refused, ErrDiskFull) || !errors.Is(refused, syscall.ENOSPC) {
		t.Fatalf("write while flushes fail = %v, want ErrDiskFull", refused)
	}
	// Reads work meanwhile, and deletes are accepted.
	wantValue(t, s, 0, fmt.Sprint(acked-1), string(value), true)
	if err := s.Update(func(tx *Tx) error { return tx.Delete(0, []byte("0")) }); err != nil {
		t.Fatalf("delete while flushes fail: %v", err)
	}

	full.Store(false)
	// The retried flush now succeeds: a write is accepted again.
	var err error
	for i := 0; ; i++ {
		if err = s.Update(func(tx *Tx) error { return tx.Set(0, []byte("after"), []byte("room")) }); err == nil {
			break
		}
		if !errors.Is(err, ErrDiskFull) || i > 10_000 {
			t.Fatalf("write once there is room: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, mem, "db", Options{})
	got := scanAll(t, s, 0, 1000)
	if len(got) != acked || got["after"] != "room" || got["1"] != string(value) {
		t.Fatalf("after reopening: %d keys, want %d (%d acknowledged, one deleted, one after)", len(got), acked, acked)
	}
}
