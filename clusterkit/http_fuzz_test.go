package clusterkit

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// fuzzRoutes are the library's routes that decode a request body or query.
var fuzzRoutes = []struct{ method, path string }{
	{http.MethodPost, "/cluster/join"},
	{http.MethodPost, "/cluster/leave"},
	{http.MethodPost, "/cluster/drain"},
	{http.MethodPost, "/cluster/formation"},
	{http.MethodPost, "/partitions/ready"},
	{http.MethodGet, "/partitions/key?key="},
	{http.MethodGet, "/partitions?offset="},
	{http.MethodGet, "/cluster?wait="},
}

// FuzzRequestDecoders sends any body (or query value) to each route of a
// node that is not started: the request must be refused or answered with
// a JSON body, never with a panic or a 500, and a join that passes the
// checks holds only what the checks allow.
func FuzzRequestDecoders(f *testing.F) {
	f.Add(uint8(0), []byte(`{"id":"node-9","http_addr":"127.0.0.1:1","raft_addr":"127.0.0.1:2","weight":3}`))
	f.Add(uint8(0), []byte(`{"id":"x","http_addr":"127.0.0.1:1","raft_addr":"127.0.0.1:2","weight":1000000}`))
	f.Add(uint8(1), []byte(`{"id":"node-1"}`))
	f.Add(uint8(2), []byte(`{"id":"node-1","draining":false}`))
	f.Add(uint8(3), []byte(`{"id":"a","http_addr":"127.0.0.1:1","expect":3}`))
	f.Add(uint8(4), []byte(`{"partition":3,"node":"node-2"}`))
	f.Add(uint8(5), []byte("user:123"))
	f.Add(uint8(6), []byte("-1"))
	f.Add(uint8(7), []byte("30s"))
	ck, err := NewClusterKit(Options{NodeID: "fuzz", HTTPAddr: "127.0.0.1:1", DataDir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		r := fuzzRoutes[int(route)%len(fuzzRoutes)]
		var req *http.Request
		if r.method == http.MethodGet {
			req = httptest.NewRequest(r.method, "/", nil)
			req.URL.Path = r.path[:bytes.IndexByte([]byte(r.path), '?')]
			req.URL.RawQuery = r.path[bytes.IndexByte([]byte(r.path), '?')+1:] + urlEscape(body)
			req.Header.Set("If-None-Match", `"0"`)
		} else {
			req = httptest.NewRequest(r.method, r.path, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
		}
		rec := httptest.NewRecorder()
		ck.echo.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s %s %q: %d %s", r.method, r.path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var e ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("%s %s %q: %d with body %q, not a JSON error", r.method, r.path, body, rec.Code, rec.Body)
			}
		}
		if r.path == "/cluster/join" && rec.Code != http.StatusBadRequest && rec.Code != http.StatusRequestEntityTooLarge {
			var j JoinRequest
			if err := json.Unmarshal(body, &j); err != nil {
				t.Fatalf("join %q passed the decoder but does not decode: %v", body, err)
			}
			if !validID(j.ID) || j.Weight < 0 || j.Weight > MaxWeight {
				t.Fatalf("join %q passed the checks with id %q weight %d", body, j.ID, j.Weight)
			}
		}
	})
}

// urlEscape percent-encodes every byte, so that any input reaches the
// query parameter whole.
func urlEscape(b []byte) string {
	const hex = "0123456789ABCDEF"
	out := make([]byte, 0, 3*len(b))
	for _, c := range b {
		out = append(out, '%', hex[c>>4], hex[c&15])
	}
	return string(out)
}
