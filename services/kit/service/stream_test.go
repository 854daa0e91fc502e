package service

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
	"clusterkit.dev/services/kit/api"
	"clusterkit.dev/services/kit/migrate"
	"clusterkit.dev/services/kit/records"
	"clusterkit.dev/services/kit/stream"
)

// ver is a version as the services have: two numbers, ordered.
type ver struct{ hi, lo uint64 }

func (v ver) Less(o ver) bool       { return v.hi < o.hi || v.hi == o.hi && v.lo < o.lo }
func (v ver) Pair() (hi, lo uint64) { return v.hi, v.lo }
func fromPair(hi, lo uint64) ver    { return ver{hi, lo} }

// TestStream serves the stream route from a store on a one-node cluster:
// a bad partition is a 400, a partition Check refuses takes
// Check's status, and any other is every record it holds, tombstones
// included, then the end frame, with the node's map version.
func TestStream(t *testing.T) {
	c := cktest.New(t, 1)
	ck := c.Member(0).CK
	c.Eventually("the partition map", func() error {
		if ck.PartitionCount() <= 5 {
			return fmt.Errorf("%d partitions", ck.PartitionCount())
		}
		return nil
	})
	st, err := records.Open(t.TempDir(), records.Options{}, fromPair)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	want := []records.Record[ver]{
		{Key: "a", Value: []byte("1"), Version: ver{1, 1}},
		{Key: "b", Version: ver{1, 2}, Deleted: true},
	}
	for _, r := range want {
		if _, err := st.Write(3, r); err != nil {
			t.Fatal(err)
		}
	}
	drops := migrate.NewDropper(time.Minute, ck, st, migrate.NewTable(), migrate.NewMetrics("svc"), slog.Default())
	defer drops.Close()
	h := &Stream[ver]{CK: ck, Drops: drops, MapWait: time.Millisecond, WriteTimeout: time.Second, Log: slog.Default(),
		Check: func(p int) error {
			if p == 5 {
				return api.Unavailable(fmt.Sprintf("partition %d is being copied", p))
			}
			return nil
		}}
	get := func(query string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, migrate.StreamPath+"?"+query, nil))
		if w.Header().Get(clusterkit.HeaderMapVersion) == "" {
			t.Errorf("%s: no map version", query)
		}
		return w
	}
	for query, status := range map[string]int{"partition=x": 400, "partition=-1": 400, "partition=100000": 400, "partition=5": 503} {
		if w := get(query); w.Code != status {
			t.Errorf("%s: %d %s, want %d", query, w.Code, w.Body, status)
		}
	}
	w := get("partition=3")
	if w.Code != http.StatusOK {
		t.Fatalf("partition=3: %d %s", w.Code, w.Body)
	}
	rd := stream.NewReader(w.Body, fromPair, stream.Limits{})
	for _, r := range want {
		got, err := rd.Next()
		if err != nil || got.Key != r.Key || string(got.Value) != string(r.Value) || got.Version != r.Version || got.Deleted != r.Deleted {
			t.Fatalf("streamed %+v (%v), want %+v", got, err, r)
		}
	}
	if _, err := rd.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the records: %v, want the end frame", err)
	}
}
