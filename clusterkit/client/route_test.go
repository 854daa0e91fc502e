package client_test

import (
	"strconv"
	"testing"

	"clusterkit.dev/clusterkit/cktest"
)

func TestRouteDoesNotAllocate(t *testing.T) {
	c := cktest.New(t, 1)
	c.WaitConverged()
	cl := newClient(t, seeds(c))
	keys := make([]string, 64)
	for i := range keys {
		keys[i] = "user:" + strconv.Itoa(i)
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		r, err := cl.Route(keys[i%len(keys)])
		if err != nil || r.Primary == nil || len(r.WriteOwners()) == 0 {
			t.Fatalf("Route: %+v, %v", r, err)
		}
		i++
	})
	if allocs != 0 {
		t.Fatalf("Route allocates %.1f times per call, want 0", allocs)
	}
}

func BenchmarkRoute(b *testing.B) {
	c := cktest.New(b, 3)
	c.WaitConverged()
	cl := newClient(b, seeds(c))
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "user:" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := cl.Route(keys[i&1023]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
