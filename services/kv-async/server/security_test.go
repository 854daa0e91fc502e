package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
	ckclient "clusterkit.dev/clusterkit/client"
	"clusterkit.dev/services/kit/kittest"
	"clusterkit.dev/services/kv-async/internal/store"
)

const testToken = "kv-async test token"

// withToken gives every node the cluster token.
func withToken() cktest.Option {
	return cktest.WithSetup(func(_ int, o *clusterkit.Options) { o.ClusterToken = testToken })
}

// answer is an HTTP answer read whole.
type answer struct {
	status int
	body   []byte
}

// jsonError returns the error of a JSON error body, or "".
func (a answer) jsonError() string {
	var e clusterkit.ErrorBody
	_ = json.Unmarshal(a.body, &e)
	return e.Error
}

// send makes one request with hc (http.DefaultClient if nil), with the
// token unless it is empty.
func send(t testing.TB, hc *http.Client, method, url, ctype, token string, body []byte) answer {
	t.Helper()
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, b}
}

// ownersOf returns the route of key and the members of its primary and
// first replica.
func ownersOf(t testing.TB, tc *testCluster, r ckclient.Route) (primary, replica *cktest.Member) {
	t.Helper()
	if r.Primary == nil || len(r.Replicas) == 0 {
		t.Fatalf("partition %d: want a primary and a replica", r.Partition)
	}
	for _, m := range tc.Running() {
		switch m.ID {
		case r.Primary.ID:
			primary = m
		case r.Replicas[0].ID:
			replica = m
		}
	}
	return primary, replica
}

// forgedBatch is one section of partition p from sender, with recs.
func forgedBatch(sender string, inc, mapVersion uint64, p int, epoch, from, to uint64, recs ...store.Record) []byte {
	return appendBatchRequest(nil, &batchRequest{Sender: sender, Inc: inc, MapVersion: mapVersion,
		Sections: []section{{Partition: p, Epoch: epoch, From: from, To: to, Records: recs}}})
}

// With a cluster token, the node-to-node routes answer 401 with a JSON
// error to a request without it or with a wrong one, change nothing and
// count it; the nodes' own replication carries it, and the application's
// API stays open.
func TestNodeToNodeRoutesNeedTheToken(t *testing.T) {
	tc := newCluster(t, 3, Config{}, withToken())
	c := tc.client()
	const n = 50
	writeKeys(t, c, 0, n, "v")
	checkEveryOwner(t, tc, c, n, func(i int) string { return "v" + strconv.Itoa(i) })

	r, err := c.SDK().Route(key(0))
	if err != nil {
		t.Fatal(err)
	}
	primary, replica := ownersOf(t, tc, r)
	part := replica.CK.Partitions()[r.Partition]
	forged := forgedBatch(primary.ID, tc.server(primary.Index).Store().Incarnation(), replica.CK.Version(), r.Partition,
		part.Epoch, 0, 1<<40, store.Record{Key: key(0), Value: []byte("forged"), Version: store.Version{Epoch: part.Epoch, Seq: 1 << 40}})
	stream := replica.URL(pathStream + "?partition=" + strconv.Itoa(r.Partition))
	for _, token := range []string{"", "wrong token"} {
		for _, a := range []answer{
			send(t, nil, http.MethodPost, replica.URL(pathReplicate), contentTypeBatch, token, forged),
			send(t, nil, http.MethodGet, stream, "", token, nil),
		} {
			if a.status != http.StatusUnauthorized || a.jsonError() == "" {
				t.Errorf("token %q: %d %.200s, want 401 with a JSON error", token, a.status, a.body)
			}
		}
	}
	for _, route := range []string{pathReplicate, pathStream} {
		sample := `clusterkit_unauthorized_requests_total{route="` + route + `"}`
		if got := metricValue(t, replica, sample); got != 2 {
			t.Errorf("%s = %v, want 2", sample, got)
		}
	}
	// Nothing changed: the replica still has the acknowledged value, and
	// takes the primary's next writes.
	if got, err := c.GetFrom(context.Background(), r.Replicas[0], key(0)); err != nil || got != "v0" {
		t.Fatalf("%s on the replica after refused batches: %q, %v", key(0), got, err)
	}
	// The application's API needs no token.
	if a := send(t, nil, http.MethodPost, primary.URL("/kv/set"), "application/json", "", []byte(`{"key":"`+key(0)+`","value":"v0-2"}`)); a.status != http.StatusOK {
		t.Fatalf("set without the token: %d %s", a.status, a.body)
	}
	checkEveryOwner(t, tc, c, 1, func(int) string { return "v0-2" })
	// With the token, the stream is served.
	if a := send(t, nil, http.MethodGet, stream, "", testToken, nil); a.status != http.StatusOK {
		t.Fatalf("stream with the token: %d %.200s", a.status, a.body)
	}
}

// Replication batches that the partition's primary in the receiver's map
// could not have sent are refused with 400, token or not, and change
// nothing: after each, the real primary's writes still replicate (a
// batch with a high epoch would otherwise raise the replica's fence and
// make every batch of the real primary stale).
func TestForgedReplicationBatchesAreRefused(t *testing.T) {
	tc := newCluster(t, 3, Config{})
	c := tc.client()
	const n = 40
	writeKeys(t, c, 0, n, "v")
	checkEveryOwner(t, tc, c, n, func(i int) string { return "v" + strconv.Itoa(i) })

	r, err := c.SDK().Route(key(0))
	if err != nil {
		t.Fatal(err)
	}
	primary, replica := ownersOf(t, tc, r)
	var other string // a member that is neither the primary nor the receiver
	for _, m := range tc.Running() {
		if m.ID != primary.ID && m.ID != replica.ID {
			other = m.ID
		}
	}
	part := replica.CK.Partitions()[r.Partition]
	ep, p, mv := part.Epoch, r.Partition, replica.CK.Version()
	inc := tc.server(primary.Index).Store().Incarnation()
	rec := func(epoch, seq uint64) store.Record {
		return store.Record{Key: key(0), Value: []byte("forged"), Version: store.Version{Epoch: epoch, Seq: seq}}
	}
	for _, tt := range []struct {
		name  string
		batch []byte
	}{
		{"epoch above the map's", forgedBatch(primary.ID, inc, mv, p, ep+1000, 0, 5, rec(ep+1000, 5))},
		{"probe at an epoch above the map's", appendBatchRequest(nil, &batchRequest{Sender: primary.ID, Inc: inc, MapVersion: mv,
			Sections: []section{{Partition: p, Epoch: ep + 1, Probe: true}}})},
		{"sender not the primary", forgedBatch(other, inc, mv, p, ep, 0, 5, rec(ep, 5))},
		{"sender not a member", forgedBatch("intruder", inc, mv, p, ep, 0, 5, rec(ep, 5))},
		{"record newer than its section", forgedBatch(primary.ID, inc, mv, p, ep, 0, 5, rec(ep+1, 1))},
		{"record numbered beyond the section", forgedBatch(primary.ID, inc, mv, p, ep, 0, 5, rec(ep, 6))},
		{"sequence that cannot be exceeded", forgedBatch(primary.ID, inc, mv, p, ep, 0, math.MaxUint64, rec(ep, math.MaxUint64))},
		{"range backwards", forgedBatch(primary.ID, inc, mv, p, ep, 9, 5)},
		{"partition out of range", forgedBatch(primary.ID, inc, mv, 1<<20, ep, 0, 5, rec(ep, 5))},
	} {
		a := send(t, nil, http.MethodPost, replica.URL(pathReplicate), contentTypeBatch, "", tt.batch)
		if a.status != http.StatusBadRequest || a.jsonError() == "" {
			t.Errorf("%s: %d %.300s, want 400 with a JSON error", tt.name, a.status, a.body)
		}
	}
	// The real primary's writes still reach the replica, and no forged
	// value is stored anywhere.
	writeKeys(t, c, 0, n, "w")
	checkEveryOwner(t, tc, c, n, func(i int) string { return "w" + strconv.Itoa(i) })
}

// A batch that passes for the primary's (its ID, incarnation and epoch:
// only the cluster token tells it apart) and moves the replica's cursor
// far beyond the primary's index does not stop replication: the primary
// does not believe a cursor beyond its own index, and ships on.
func TestForgedCursorDoesNotStopReplication(t *testing.T) {
	tc := newCluster(t, 3, Config{})
	c := tc.client()
	const n = 20
	writeKeys(t, c, 0, n, "v")
	checkEveryOwner(t, tc, c, n, func(i int) string { return "v" + strconv.Itoa(i) })
	r, err := c.SDK().Route(key(0))
	if err != nil {
		t.Fatal(err)
	}
	primary, replica := ownersOf(t, tc, r)
	part := replica.CK.Partitions()[r.Partition]
	forged := forgedBatch(primary.ID, tc.server(primary.Index).Store().Incarnation(), replica.CK.Version(), r.Partition,
		part.Epoch, 0, maxWireSeq-1)
	if a := send(t, nil, http.MethodPost, replica.URL(pathReplicate), contentTypeBatch, "", forged); a.status != http.StatusOK {
		t.Fatalf("impersonated batch: %d %.300s, want 200", a.status, a.body)
	}
	writeKeys(t, c, 0, n, "w")
	checkEveryOwner(t, tc, c, n, func(i int) string { return "w" + strconv.Itoa(i) })
}

// Every route refuses a body larger than it carries with 413 and a JSON
// error, on the word of Content-Length, before reading it; a body shorter
// than announced is a 400, and nothing was allocated for the rest.
func TestBodyCaps(t *testing.T) {
	tc := newCluster(t, 1, Config{})
	addr := tc.Member(0).HTTPAddr()
	for _, tt := range []struct {
		method, path string
		length       int64
		want         int
	}{
		{"POST", "/kv/set", maxWriteBody + 1, 413},
		{"POST", "/kv/delete", maxWriteBody + 1, 413},
		{"POST", "/kv/batch", maxOpsBody + 1, 413},
		{"POST", pathReplicate, maxBatchBody + 1, 413},
		{"GET", "/kv/get?key=k", maxNoBody + 1, 413},
		{"GET", pathStream + "?partition=0", maxNoBody + 1, 413},
		{"GET", "/kv/replication", maxNoBody + 1, 413},
		// 60 MiB announced, 3 bytes sent: refused once the sender stops.
		{"POST", pathReplicate, maxBatchBody - 1, 400},
	} {
		a := rawRequest(t, addr, tt.method, tt.path, tt.length)
		if a.status != tt.want || a.jsonError() == "" {
			t.Errorf("%s %s with Content-Length %d: %d %.200s, want %d with a JSON error", tt.method, tt.path, tt.length, a.status, a.body, tt.want)
		}
	}
}

// rawRequest sends a request that announces length bytes of body and
// sends 3, then half-closes the connection, and reads the answer.
func rawRequest(t *testing.T, addr, method, path string, length int64) answer {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: kv\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\nabc",
		method, path, contentTypeBatch, length)
	conn.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, b}
}

// A client that stops reading its answers holds its connection for the
// request's wait bound plus WriteTimeout only: the node gives up writing
// and closes the connection, and serves others meanwhile.
func TestStalledReaderIsCutOff(t *testing.T) {
	tc := newCluster(t, 1, Config{WriteTimeout: 200 * time.Millisecond})
	c := tc.client()
	ctx := context.Background()
	value := string(bytes.Repeat([]byte("s"), MaxValueBytes))
	if err := c.Set(ctx, "stalled", value); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", tc.Member(0).HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const requests = 32 // 32 MiB of answers: more than the sockets buffer
	var req []byte
	for range requests {
		req = append(req, "GET /kv/get?key=stalled HTTP/1.1\r\nHost: kv\r\n\r\n"...)
	}
	if _, err := conn.Write(req); err != nil {
		t.Fatal(err)
	}
	// Others are served while the stalled reader's answer waits.
	if got, err := c.Get(ctx, "stalled"); err != nil || len(got) != MaxValueBytes {
		t.Fatalf("get during the stall: %d bytes, %v", len(got), err)
	}
	time.Sleep(maxRequestWait + 200*time.Millisecond + 1500*time.Millisecond)
	// A node that waited would now send every answer, 32 MiB, in well
	// under the 5 s given; one that gave up sends what its buffers held.
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := io.Copy(io.Discard, conn)
	t.Logf("read %d bytes after the stall, then %v", n, err)
	if n >= requests*MaxValueBytes {
		t.Fatalf("read %d bytes, every answer: the node waited for the stalled reader", n)
	}
}

// A partition stream longer than WriteTimeout is not cut while it makes
// progress: each frame gets the bound anew.
func TestSlowStreamIsNotCut(t *testing.T) {
	const wt = 500 * time.Millisecond
	tc := newCluster(t, 1, Config{WriteTimeout: wt})
	c := tc.client()
	ck := tc.Member(0).CK
	p0, err := ck.GetPartition("stream-0")
	if err != nil {
		t.Fatal(err)
	}
	value := string(bytes.Repeat([]byte("p"), MaxValueBytes))
	want := 0
	for i := 0; want < 12; i++ { // 12 MiB, a frame each
		k := "stream-" + strconv.Itoa(i)
		if p, _ := ck.GetPartition(k); p.Index == p0.Index {
			if err := c.Set(context.Background(), k, value); err != nil {
				t.Fatalf("set %s: %v", k, err)
			}
			want++
		}
	}
	conn, err := net.Dial("tcp", tc.Member(0).HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET %s?partition=%d HTTP/1.1\r\nHost: kv\r\n\r\n", pathStream, p0.Index)
	// 512 KiB every 50 ms: a 1 MiB frame in 100 ms, within the bound, and
	// the whole stream in over a second, twice the bound and more.
	resp, err := http.ReadResponse(bufio.NewReaderSize(&kittest.PacedReader{R: conn, Per: 512 << 10, Every: 50 * time.Millisecond}, 4<<10), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %s", resp.Status)
	}
	start := time.Now()
	dec := gob.NewDecoder(resp.Body)
	got := 0
	for {
		var f streamFrame
		if err := dec.Decode(&f); err != nil {
			t.Fatalf("stream cut after %v and %d records: %v", time.Since(start), got, err)
		}
		got += len(f.Records)
		if f.End != nil {
			break
		}
	}
	if got != want {
		t.Fatalf("streamed %d records, want %d", got, want)
	}
	t.Logf("the stream took %v (write timeout %v)", time.Since(start), wt)
}

// A copy source whose stream carries a version or a cursor that could
// never be exceeded fails the copy, and the record is not stored.
func TestCopyRefusesUnboundedVersions(t *testing.T) {
	tc := newCluster(t, 1, Config{})
	s := tc.server(0)
	for _, tt := range []struct {
		name   string
		frames []streamFrame
	}{
		{"version", []streamFrame{{Records: []store.Record{{Key: "unbounded", Value: []byte("v"), Version: store.Version{Epoch: 1, Seq: math.MaxUint64}}}}}},
		{"cursor", []streamFrame{{End: &streamEnd{Node: "src", Inc: 1, Head: 1, Cursors: []store.Cursor{{Node: "other", Inc: 1, Seq: math.MaxUint64}}}}}},
	} {
		src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", contentTypeGob)
			enc := gob.NewEncoder(w)
			for _, f := range tt.frames {
				_ = enc.Encode(f)
			}
		}))
		node := &clusterkit.Node{ID: "forged-source", IP: strings.TrimPrefix(src.URL, "http://")}
		_, err := s.copyFrom(context.Background(), 0, node)
		src.Close()
		if err == nil || !strings.Contains(err.Error(), "out of bounds") {
			t.Errorf("%s: copy error %v, want out of bounds", tt.name, err)
		}
	}
	if _, found, err := s.store.Get(0, "unbounded"); err != nil || found {
		t.Fatalf("the unbounded record: found %v, %v", found, err)
	}
}
