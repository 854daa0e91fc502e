package stream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"clusterkit.dev/services/kit/records"
)

func openStore(t *testing.T) *records.Store[ver] {
	t.Helper()
	st, err := records.Open(t.TempDir(), records.Options{}, verOf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// pull copies partition p from the server at url into dst.
func pull(url string, p int, dst *records.Store[ver], idle time.Duration) (Sent, error) {
	return Pull[ver]{
		Source:    "source",
		Partition: p,
		Open: func(ctx context.Context) (*http.Response, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return nil, err
			}
			return http.DefaultClient.Do(req)
		},
		IdleTimeout: idle,
		Version:     verOf,
		Into:        dst,
	}.Run(context.Background())
}

// TestSendAndPullCopyAPartition streams a partition of several pages,
// tombstones and a large value included, from one store into another
// over HTTP, and checks that the copy holds every record of that
// partition and none of the others, and that an older copy of a key does
// not replace the newer one the receiver holds.
func TestSendAndPullCopyAPartition(t *testing.T) {
	src, dst := openStore(t), openStore(t)
	const n = 3*page + 7
	var batch []records.Entry[ver]
	for i := range n {
		r := rec(fmt.Sprintf("k%05d", i), strconv.Itoa(i), 1, uint64(i))
		r.Deleted = i%10 == 0
		if r.Deleted {
			r.Value = nil
		}
		batch = append(batch, records.Entry[ver]{Partition: 3, Record: r})
	}
	batch = append(batch, records.Entry[ver]{Partition: 3, Record: rec("large", string(make([]byte, 3<<20)), 1, 1)})
	batch = append(batch, records.Entry[ver]{Partition: 4, Record: rec("other", "x", 1, 1)})
	if _, err := src.Merge(batch); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Write(3, rec("k00001", "newer", 2, 0)); err != nil {
		t.Fatal(err)
	}
	var sent Sent
	var sendErr error
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent, sendErr = Send(r.Context(), w, src, 3, time.Second)
	}))
	defer srv.Close()

	got, err := pull(srv.URL, 3, dst, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	srv.Close() // the handler has returned
	if sendErr != nil || sent != got || got.Records != n+1 {
		t.Fatalf("sent %+v (%v), received %+v, want %d records", sent, sendErr, got, n+1)
	}
	for i := range n {
		key := fmt.Sprintf("k%05d", i)
		r, found, err := dst.Get(3, key)
		want := batch[i].Record
		if i == 1 {
			want = rec("k00001", "newer", 2, 0)
		}
		if err != nil || !found || r.Version != want.Version || r.Deleted != want.Deleted || string(r.Value) != string(want.Value) {
			t.Fatalf("%s after the copy: %+v, found %v, %v; want %+v", key, r, found, err, want)
		}
	}
	if r, found, _ := dst.Get(3, "large"); !found || len(r.Value) != 3<<20 {
		t.Fatalf("the large value: found %v, %d bytes", found, len(r.Value))
	}
	if _, found, _ := dst.Get(4, "other"); found {
		t.Fatal("a record of another partition was copied")
	}
}

// TestPullFailsOnAnIdleSource copies from a source that stops sending,
// before its answer's header or after a few records, and expects the copy
// to fail with ErrIdle after the idle timeout (not later, as a copy with
// no idle bound would), keeping the records received before.
func TestPullFailsOnAnIdleSource(t *testing.T) {
	const idle = 500 * time.Millisecond
	for _, sendFirst := range []int{0, 3} {
		t.Run(fmt.Sprintf("after %d records", sendFirst), func(t *testing.T) {
			release := make(chan struct{})
			src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if sendFirst > 0 {
					w.WriteHeader(http.StatusOK)
					var b []byte
					for i := range sendFirst {
						r := rec("hung-"+strconv.Itoa(i), "v", 1, uint64(i))
						b = AppendRecord(b, &r)
					}
					_, _ = w.Write(b)
					w.(http.Flusher).Flush()
				}
				select {
				case <-r.Context().Done():
				case <-release:
				}
			}))
			defer src.Close()
			defer close(release)
			dst := openStore(t)
			start := time.Now()
			got, err := pull(src.URL, 0, dst, idle)
			took := time.Since(start)
			if !errors.Is(err, ErrIdle) {
				t.Fatalf("copy from an idle source: %v, want ErrIdle", err)
			}
			if took < idle || took > idle+time.Second {
				t.Errorf("the copy failed after %v, want %v to %v", took, idle, idle+time.Second)
			}
			if got.Records != sendFirst {
				t.Errorf("received %d records before the source went idle, want %d", got.Records, sendFirst)
			}
			for i := range sendFirst {
				if _, found, err := dst.Get(0, "hung-"+strconv.Itoa(i)); err != nil || !found {
					t.Fatalf("record %d sent before the source went idle not kept: found %v, %v", i, found, err)
				}
			}
		})
	}
}

// TestPullRefusesAnErrorAnswer checks that a source answering other than
// 200 fails the copy with its status and message, storing nothing.
func TestPullRefusesAnErrorAnswer(t *testing.T) {
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "partition 0 is still being copied here", http.StatusServiceUnavailable)
	}))
	defer src.Close()
	_, err := pull(src.URL, 0, openStore(t), time.Second)
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "still being copied") {
		t.Fatalf("copy from a source answering 503: %v", err)
	}
}
