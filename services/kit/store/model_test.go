package store

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"pgregory.net/rapid"
)

// TestStoreMatchesAMap runs random updates, reads, scans, drops and
// restarts against the store and a map of maps, which must agree.
func TestStoreMatchesAMap(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		fs := vfs.NewMem()
		// The key filters' default, a budget for one partition's (the
		// others unfiltered), and none.
		opts := Options{FS: fs, MemTableSize: 64 << 10, KeyFilterSize: rapid.SampledFrom([]int64{0, 2048, -1}).Draw(rt, "filter")}
		s, err := Open("db", opts)
		if err != nil {
			rt.Fatal(err)
		}
		defer func() { _ = s.Close() }()
		model := map[int]map[string]string{}
		meta := map[string]string{}
		part := rapid.IntRange(0, 3)
		key := rapid.SampledFrom([]string{"", "a", "ab", "b", "k\x00", "k\xff", "zz"})
		value := rapid.StringN(0, 40, -1)

		rt.Repeat(map[string]func(*rapid.T){
			"update": func(rt *rapid.T) {
				// Several writes in one update; later ones win.
				type op struct {
					p      int
					k, v   string
					delete bool
				}
				ops := rapid.SliceOfN(rapid.Custom(func(rt *rapid.T) op {
					return op{part.Draw(rt, "p"), key.Draw(rt, "k"), value.Draw(rt, "v"), rapid.Bool().Draw(rt, "delete")}
				}), 1, 5).Draw(rt, "ops")
				err := s.Update(func(tx *Tx) error {
					for _, o := range ops {
						var err error
						if o.delete {
							err = tx.Delete(o.p, []byte(o.k))
						} else {
							err = tx.Set(o.p, []byte(o.k), []byte(o.v))
						}
						if err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					rt.Fatal(err)
				}
				for _, o := range ops {
					if model[o.p] == nil {
						model[o.p] = map[string]string{}
					}
					if o.delete {
						delete(model[o.p], o.k)
					} else {
						model[o.p][o.k] = o.v
					}
				}
			},
			"meta": func(rt *rapid.T) {
				name, v := key.Draw(rt, "name"), value.Draw(rt, "v")
				if err := s.Update(func(tx *Tx) error { return tx.SetMeta(name, []byte(v)) }); err != nil {
					rt.Fatal(err)
				}
				meta[name] = v
			},
			"drop": func(rt *rapid.T) {
				p := part.Draw(rt, "p")
				if err := s.Update(func(tx *Tx) error { return tx.DropPartition(p) }); err != nil {
					rt.Fatal(err)
				}
				delete(model, p)
			},
			"drop and write": func(rt *rapid.T) {
				// An update that drops a partition and then writes to it
				// keeps those writes.
				p := part.Draw(rt, "p")
				ks := rapid.SliceOfN(key, 1, 3).Draw(rt, "keys")
				v := value.Draw(rt, "v")
				err := s.Update(func(tx *Tx) error {
					if err := tx.DropPartition(p); err != nil {
						return err
					}
					for _, k := range ks {
						if err := tx.Set(p, []byte(k), []byte(v)); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					rt.Fatal(err)
				}
				model[p] = map[string]string{}
				for _, k := range ks {
					model[p][k] = v
				}
			},
			"get": func(rt *rapid.T) {
				p, k := part.Draw(rt, "p"), key.Draw(rt, "k")
				v, found, err := s.Get(p, []byte(k))
				want, ok := model[p][k]
				if err != nil || found != ok || string(v) != want {
					rt.Fatalf("Get(%d, %q) = %q, %v, %v; want %q, %v", p, k, v, found, err, want, ok)
				}
				name := key.Draw(rt, "name")
				mv, found, err := s.Meta(name)
				want, ok = meta[name]
				if err != nil || found != ok || string(mv) != want {
					rt.Fatalf("Meta(%q) = %q, %v, %v; want %q, %v", name, mv, found, err, want, ok)
				}
			},
			"scan": func(rt *rapid.T) {
				p, page := part.Draw(rt, "p"), rapid.IntRange(1, 4).Draw(rt, "page")
				got := scanAll(rt, s, p, page)
				if !maps.Equal(got, model[p]) && len(got)+len(model[p]) > 0 {
					rt.Fatalf("partition %d = %v, want %v", p, got, model[p])
				}
				var want []int
				for q, m := range model {
					if len(m) > 0 {
						want = append(want, q)
					}
				}
				slices.Sort(want)
				ps, err := s.Partitions()
				if err != nil || fmt.Sprint(ps) != fmt.Sprint(want) {
					rt.Fatalf("Partitions = %v, %v; want %v", ps, err, want)
				}
			},
			"restart": func(rt *rapid.T) {
				if err := s.Close(); err != nil {
					rt.Fatal(err)
				}
				if s, err = Open("db", opts); err != nil {
					rt.Fatal(err)
				}
				hasData := false
				for _, m := range model {
					hasData = hasData || len(m) > 0
				}
				if s.HadData() != hasData {
					rt.Fatalf("HadData = %v, want %v", s.HadData(), hasData)
				}
			},
		})
	})
}
