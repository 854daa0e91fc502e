package store

import (
	"errors"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"

	kit "clusterkit.dev/services/kit/store"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// copyPartition copies partition p from src to dst as a stream does:
// src's snapshot after position since, merged into dst by version, then
// the cursors the snapshot proves. It returns the records sent.
func copyPartition(t testing.TB, src, dst *Store, p int, since uint64) int {
	t.Helper()
	sn, err := src.Snapshot(p)
	if err != nil {
		t.Fatal(err)
	}
	var frame []Record
	if err := sn.Each(since, func(e *Entry) bool { frame = append(frame, e.Record); return true }); err != nil {
		t.Fatal(err)
	}
	err = dst.Change(func(c *Change) error {
		for _, r := range frame {
			if _, err := c.Merge(p, r); err != nil {
				return err
			}
		}
		if err := c.Advance(p, Cursor{Node: "src", Inc: src.Incarnation(), Seq: sn.Head}); err != nil {
			return err
		}
		for _, cur := range sn.Cursors {
			if err := c.Advance(p, cur); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return len(frame)
}

// A partition streamed to another store arrives whole, with the cursors
// that prove it; a second copy from the receiver's cursor sends only what
// changed; a dropped partition is gone, with its cursors and fence, while
// positions go on growing and the other partitions stay.
func TestMigrateAndDrop(t *testing.T) {
	src := open(t, vfs.NewMem(), "src", Options{})
	dst := open(t, vfs.NewMem(), "dst", Options{})
	rng := rand.New(rand.NewPCG(7, 7))
	m := model{}
	changeRandomly(t, src, m, rng, 400)
	want := model{}
	for k, r := range m {
		if k.p == 1 {
			want[k] = r
		}
	}
	if n := copyPartition(t, src, dst, 1, 0); n != len(want) {
		t.Fatalf("copy sent %d records, want %d", n, len(want))
	}
	for k, r := range want {
		got, found, err := dst.Get(1, k.key)
		if err != nil || !found || got.Version != r.Version || string(got.Value) != string(r.Value) {
			t.Fatalf("copied %q = %+v (found %v, %v), want %+v", k.key, got, found, err, r)
		}
	}
	cs, err := dst.Cursors(1)
	if err != nil {
		t.Fatal(err)
	}
	head, _ := src.Head(1)
	if !slices.Contains(cs, Cursor{Node: "src", Inc: src.Incarnation(), Seq: head}) ||
		!slices.ContainsFunc(cs, func(c Cursor) bool { return c.Node == "primary" }) {
		t.Fatalf("receiver's cursors %+v: want src's at its head %d, and src's own", cs, head)
	}

	// Two more writes: the next copy from the cursor sends just them.
	write(t, src, 1, "new", "1", false)
	write(t, src, 1, "k1", "changed", false)
	if n := copyPartition(t, src, dst, 1, head); n != 2 {
		t.Fatalf("second copy from position %d sent %d records, want 2", head, n)
	}
	if r, _, _ := dst.Get(1, "k1"); string(r.Value) != "changed" {
		t.Fatalf("k1 after the second copy: %q", r.Value)
	}

	// Drop: only when the condition holds, then everything of the
	// partition goes.
	err = src.Change(func(c *Change) error { return c.RaiseFence(1, 9) })
	if err != nil {
		t.Fatal(err)
	}
	if dropped, err := src.Drop(1, func() bool { return false }); err != nil || dropped {
		t.Fatalf("drop refused by its condition: dropped %v, %v", dropped, err)
	}
	before, _ := write(t, src, 2, "other", "x", false)
	if dropped, err := src.Drop(1, nil); err != nil || !dropped {
		t.Fatalf("drop: dropped %v, %v", dropped, err)
	}
	if _, found, _ := src.Get(1, "k1"); found {
		t.Fatal("a record of the dropped partition is still there")
	}
	if cs, _ := src.Cursors(1); len(cs) != 0 {
		t.Fatalf("cursors of the dropped partition: %+v", cs)
	}
	if h, _ := src.Head(1); h != 0 {
		t.Fatalf("head of the dropped partition: %d", h)
	}
	err = src.Change(func(c *Change) error {
		f, err := c.Fence(1)
		if err == nil && f != 0 {
			t.Errorf("fence of the dropped partition: %d", f)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if parts, _ := src.Partitions(); slices.Contains(parts, 1) || !slices.Contains(parts, 2) {
		t.Fatalf("partitions after the drop: %v", parts)
	}
	if r, found, _ := src.Get(2, "other"); !found || r.Version != before.Version {
		t.Fatal("another partition lost a record to the drop")
	}
	// Gained again: positions go on above every one handed out before,
	// so a receiver's old cursor for this node skips nothing new.
	if again, _ := write(t, src, 1, "k1", "again", false); again.Version.Seq <= before.Version.Seq {
		t.Fatalf("position %d after the drop, %d before", again.Version.Seq, before.Version.Seq)
	}
}

// A store on a nearly full disk refuses changes that write, with
// ErrDiskFull, and changes nothing; reads and drops go on; with room
// again, writes are accepted.
func TestAFullDiskRefusesWrites(t *testing.T) {
	fs := vfs.NewMem()
	const minFree = 100 << 20
	// Below twice MinFreeBytes: the store measures at every change.
	fs.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: minFree * 3 / 2, TotalBytes: 20 * minFree})
	s := open(t, fs, "kv", Options{Engine: kit.Options{MinFreeBytes: minFree}})
	rec, _ := write(t, s, 1, "k", "before", false)
	write(t, s, 2, "gone", "x", false)
	head, _ := s.Head(1)

	fs.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: minFree - 1, TotalBytes: 20 * minFree})
	if _, _, err := s.Write(1, "k", []byte("refused"), false, epoch(5)); !errors.Is(err, ErrDiskFull) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write on a full disk: %v, want ErrDiskFull", err)
	}
	err := s.Change(func(c *Change) error {
		if _, err := c.Merge(1, Record{Key: "m", Value: []byte("v"), Version: Version{Epoch: 9, Seq: 1}}); err != nil {
			return err
		}
		return c.Advance(1, Cursor{Node: "n", Inc: 1, Seq: 5})
	})
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("replicated batch on a full disk: %v, want ErrDiskFull", err)
	}
	if r, _, err := s.Get(1, "k"); err != nil || r.Version != rec.Version || string(r.Value) != "before" {
		t.Fatalf("k after refused writes: %+v, %v", r, err)
	}
	if _, found, _ := s.Get(1, "m"); found {
		t.Fatal("a refused merge was stored")
	}
	if cs, _ := s.Cursors(1); len(cs) != 0 {
		t.Fatalf("a refused cursor was stored: %+v", cs)
	}
	if h, _ := s.Head(1); h != head {
		t.Fatalf("head moved from %d to %d by refused writes", head, h)
	}
	// Making room is allowed.
	if dropped, err := s.Drop(2, nil); err != nil || !dropped {
		t.Fatalf("drop on a full disk: %v, %v", dropped, err)
	}

	fs.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: minFree, TotalBytes: 20 * minFree})
	if r, _ := write(t, s, 1, "k", "after", false); r.Version.Seq <= rec.Version.Seq {
		t.Fatalf("position %d after the full disk, %d before", r.Version.Seq, rec.Version.Seq)
	}
}
