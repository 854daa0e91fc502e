package server

import (
	"bufio"
	"bytes"
	"clusterkit.dev/services/kit/kittest"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"clusterkit.dev/services/kit/stream"
)

// The largest batch a sender builds fits the receiver's cap.
func TestSendersBatchesFitTheCap(t *testing.T) {
	const frame = 1 + 2*binaryMaxVarint + 1 + 2*binaryMaxVarint // kind, lengths, epoch and seq, flags
	repl := maxBatchBytes + MaxKeySize + MaxValueSize + maxBatchCount*frame + 1 + binaryMaxVarint
	fwd := fwdMaxBatchBytes + MaxKeySize + MaxValueSize + fwdMaxBatch*frame + 1 + binaryMaxVarint
	if repl > maxBatchBody || fwd > maxBatchBody {
		t.Fatalf("largest replication batch %d, forward batch %d bytes; the cap is %d", repl, fwd, maxBatchBody)
	}
}

const binaryMaxVarint = 10

// A body over its route's cap is refused with 413 and a JSON error,
// whether its Content-Length says so or it is streamed, and changes
// nothing.
func TestBodiesOverTheCapAreRefused(t *testing.T) {
	tc := newTestCluster(t, 3, Config{})
	key := "capped"
	p, _ := tc.C.Member(0).CK.GetPartition(key)
	replica := tc.Index(p.ReplicaNodes[0])
	value := strings.Repeat("v", MaxValueSize)
	var repl, fwd []byte
	n := maxBatchBody/MaxValueSize + 1
	for i := range n {
		rec := recordForTest(key+strconv.Itoa(i), value, p.Epoch, 1)
		repl = stream.AppendRecord(repl, &rec)
		fwd = appendFwdOp(fwd, &op{kind: opKindSet, key: key + strconv.Itoa(i), value: []byte(value)})
	}
	repl, fwd = stream.AppendEnd(repl, n), stream.AppendEnd(fwd, n)
	for _, c := range []struct {
		name, method, path string
		body               []byte
	}{
		{"replicate", http.MethodPost, "/kv/internal/replicate", repl},
		{"forward", http.MethodPost, "/kv/internal/forward", fwd},
		{"set", http.MethodPost, "/kv/set", []byte(`{"key":"capped","value":"` + strings.Repeat("v", maxBody) + `"}`)},
		{"get", http.MethodGet, "/kv/get?key=capped", bytes.Repeat([]byte{' '}, maxNoBody+1)},
		{"stream", http.MethodGet, "/kv/internal/stream?partition=0", bytes.Repeat([]byte{' '}, maxNoBody+1)},
	} {
		for _, streamed := range []bool{false, true} {
			req, err := http.NewRequest(c.method, tc.C.Member(replica).URL(c.path), bytes.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			if streamed {
				// No Content-Length: the cap must stop the read.
				req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(c.body)), -1
			}
			resp, err := tc.Client.Do(req)
			if err != nil {
				t.Fatalf("%s (streamed %v): %v", c.name, streamed, err)
			}
			var e errorBody
			derr := json.NewDecoder(resp.Body).Decode(&e)
			resp.Body.Close()
			if c.path == "/kv/get?key=capped" || c.path == "/kv/internal/stream?partition=0" {
				if streamed {
					// A bodiless route does not read the body: nothing to
					// refuse, and nothing done with it.
					continue
				}
			}
			if resp.StatusCode != http.StatusRequestEntityTooLarge || derr != nil || e.Error == "" {
				t.Errorf("%s (streamed %v): %d %v %q, want 413 with a JSON error", c.name, streamed, resp.StatusCode, derr, e.Error)
			}
		}
	}
	for i := range 3 {
		if recs, err := tc.Server(i).store.Scan(p.Index, "", 10); err != nil || len(recs) > 0 {
			t.Fatalf("node %d holds %d records after refused bodies (%v)", i, len(recs), err)
		}
	}
}

// Many large writes forwarded at once fit the batches' cap: the forwarding
// node splits them, and each is acknowledged and stored.
func TestLargeForwardedWritesFitTheCap(t *testing.T) {
	// Six megabyte writes at once, past the 4 MiB cap of a batch,
	// replicate slowly under -race on a loaded test machine: give the
	// forwarded requests and the replicas time rather than count them
	// lagging.
	tc := newTestCluster(t, 3, Config{NoSync: true, ForwardTimeout: 30 * time.Second,
		ReplicationTimeout: 30 * time.Second, ReplicaLagTimeout: 20 * time.Second})
	tc.Client.Timeout = time.Minute
	value := strings.Repeat("x", MaxValueSize)
	// Keys whose primary is not node 0, written through node 0.
	var keys []string
	ck := tc.C.Member(0).CK
	for i := 0; len(keys) < 6; i++ {
		k := "big-" + strconv.Itoa(i)
		if p, _ := ck.GetPartition(k); p.PrimaryNode != ck.GetMyNodeID() {
			keys = append(keys, k)
		}
	}
	var wg sync.WaitGroup
	for _, k := range keys {
		wg.Go(func() {
			if a := setLarge(tc, 0, k, value); a.Status != http.StatusOK {
				t.Errorf("set %s: %d %.200s", k, a.Status, a.Body)
			}
		})
	}
	wg.Wait()
	for _, k := range keys {
		for _, id := range tc.Owners(0, k) {
			if a := tc.GetLocal(tc.Index(id), k); a.Status != http.StatusOK || a.Value != value {
				t.Errorf("local get %s on owner %s: %d, %d bytes", k, id, a.Status, len(a.Value))
			}
		}
		if a := tc.Get(1, k); a.Status != http.StatusOK || a.Value != value {
			t.Errorf("get %s: %d, %d bytes", k, a.Status, len(a.Value))
		}
	}
	if got := tc.Metric(0, `kvss_forward_batch_ops_count{kind="write"}`); got == 0 {
		t.Error("no write batch was forwarded")
	}
}

// A client that stops reading its answer holds its connection for
// WriteTimeout (beyond what the request waits for) only: the node gives
// up writing and closes the connection.
func TestStalledReaderIsCutOff(t *testing.T) {
	tc := newTestCluster(t, 3, Config{WriteTimeout: 200 * time.Millisecond, ForwardTimeout: time.Second, ReadyTimeout: 100 * time.Millisecond,
		NoSync: true, ReplicationTimeout: 900 * time.Millisecond, ReplicaLagTimeout: 800 * time.Millisecond, ForwardProbeTimeout: 900 * time.Millisecond})
	key := "stalled"
	value := strings.Repeat("s", MaxValueSize)
	if a := setLarge(tc, 0, key, value); a.Status != http.StatusOK {
		t.Fatalf("set: %d %.200s", a.Status, a.Body)
	}
	conn := dial(t, tc.C.Member(0).HTTPAddr(), 0)
	const requests = 32 // 32 MiB of answers: more than the sockets buffer
	var req []byte
	for range requests {
		req = append(req, "GET /kv/get?key="+key+" HTTP/1.1\r\nHost: kv\r\n\r\n"...)
	}
	if _, err := conn.Write(req); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // well past every bound: 1s + 0.1s + 0.2s per answer
	// A node that waited would now send every answer, 32 MiB, in well
	// under the 5 s given; one that gave up sends what the sockets'
	// buffers held, then closes the connection.
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := io.Copy(io.Discard, conn)
	t.Logf("read %d bytes after the stall, then %v", n, err)
	if n >= requests*MaxValueSize {
		t.Fatalf("read %d bytes, every answer: the node waited for the stalled reader", n)
	}
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the node did not close the connection: %v", err)
	}
	// The node still serves others.
	if a := tc.Get(0, key); a.Status != http.StatusOK {
		t.Fatalf("get after the stall: %d", a.Status)
	}
}

// A partition stream longer than WriteTimeout is not cut while it makes
// progress: each chunk gets the bound anew.
func TestSlowStreamIsNotCut(t *testing.T) {
	wt := time.Second
	tc := newTestCluster(t, 3, Config{WriteTimeout: wt, NoSync: true, ReplicationTimeout: 5 * time.Second, ReplicaLagTimeout: 4 * time.Second})
	ck := tc.C.Member(0).CK
	p, _ := ck.GetPartition("stream-0")
	src := tc.Index(p.PrimaryNode)
	value := strings.Repeat("p", MaxValueSize/2)
	want := 0
	for i := 0; want < 24; i++ {
		k := fmt.Sprintf("stream-%d", i)
		if q, _ := ck.GetPartition(k); q.Index == p.Index {
			if a := setLarge(tc, 0, k, value); a.Status != http.StatusOK {
				t.Fatalf("set %s: %d %.200s", k, a.Status, a.Body)
			}
			want++
		}
	}
	conn := dial(t, tc.C.Member(src).HTTPAddr(), 64<<10)
	if _, err := fmt.Fprintf(conn, "GET /kv/internal/stream?partition=%d HTTP/1.1\r\nHost: kv\r\n\r\n", p.Index); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 4<<10), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %s", resp.Status)
	}
	// 256 KiB every 50 ms: a 1 MiB chunk in 200 ms, well within the
	// bound, and the whole 12 MiB (the sockets buffer some 4 MiB of it)
	// in over 2 s, twice the bound and more.
	slow := &kittest.PacedReader{R: resp.Body, Per: 256 << 10, Every: 50 * time.Millisecond}
	start := time.Now()
	recs, err := readAll(mustRead(t, slow))
	if err != nil {
		t.Fatalf("stream cut after %v: %v", time.Since(start), err)
	}
	if len(recs) != want {
		t.Fatalf("streamed %d records, want %d", len(recs), want)
	}
	if d := time.Since(start); d < 2*wt {
		t.Logf("the stream took %v only; the kernel buffered it", d)
	}
}

// setLarge sets key through node i, retrying 503s (retry, says the API):
// megabyte writes on a loaded test machine meet lagging replicas.
func setLarge(tc *testCluster, i int, key, value string) answer {
	tc.T.Helper()
	a := tc.set(i, key, value)
	for try := 0; a.Status == http.StatusServiceUnavailable && try < 20; try++ {
		time.Sleep(100 * time.Millisecond)
		a = tc.set(i, key, value)
	}
	return a
}

// dial dials addr with a receive buffer of rcvbuf bytes (0: the
// system's), so that an answer the test does not read fills it soon.
func dial(t *testing.T, addr string, rcvbuf int) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	tcp := c.(*net.TCPConn)
	if rcvbuf > 0 {
		if err := tcp.SetReadBuffer(rcvbuf); err != nil {
			t.Fatal(err)
		}
	}
	return tcp
}

func mustRead(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return b
}
