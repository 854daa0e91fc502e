package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kv-async/client"
	"clusterkit.dev/services/kv-async/internal/store"
)

func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	tc := newCluster(t, 2, Config{})
	c := tc.client()
	r, err := c.SDK().Route("k")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Replicas) != 1 {
		t.Fatalf("route of k: %d replicas, want 1", len(r.Replicas))
	}
	prim, repl := "http://"+r.Primary.IP, "http://"+r.Replicas[0].IP
	bigKey := strings.Repeat("k", MaxKeyBytes+1)
	setBody := func(k, v string) string {
		b, _ := json.Marshal(map[string]string{"key": k, "value": v})
		return string(b)
	}

	for _, tt := range []struct {
		name, method, url, ctype, body string
		code                           int
	}{
		{"set: empty body", "POST", prim + "/kv/set", "", "", 400},
		{"set: malformed JSON", "POST", prim + "/kv/set", "", `{"key":`, 400},
		{"set: not an object", "POST", prim + "/kv/set", "", `["k","v"]`, 400},
		{"set: trailing data", "POST", prim + "/kv/set", "", `{"key":"k","value":"v"} {}`, 400},
		{"set: no key", "POST", prim + "/kv/set", "", `{"value":"v"}`, 400},
		{"set: no value", "POST", prim + "/kv/set", "", `{"key":"k"}`, 400},
		{"set: empty key", "POST", prim + "/kv/set", "", `{"key":"","value":"v"}`, 400},
		{"set: value not a string", "POST", prim + "/kv/set", "", `{"key":"k","value":3}`, 400},
		{"set: key over 1 KiB", "POST", prim + "/kv/set", "", setBody(bigKey, "v"), 413},
		{"set: value over 1 MiB", "POST", prim + "/kv/set", "", setBody("k", strings.Repeat("v", MaxValueBytes+1)), 413},
		{"set: body over the limit", "POST", prim + "/kv/set", "", setBody("k", strings.Repeat("v", maxWriteBody)), 413},
		{"set: wrong method", "GET", prim + "/kv/set", "", "", 405},
		{"set: on a replica", "POST", repl + "/kv/set", "", setBody("k", "v"), clusterkit.StatusNotOwner},
		{"get: no key", "GET", prim + "/kv/get", "", "", 400},
		{"get: empty key", "GET", prim + "/kv/get?key=", "", "", 400},
		{"get: key over 1 KiB", "GET", prim + "/kv/get?key=" + bigKey, "", "", 413},
		{"get: bad consistency", "GET", prim + "/kv/get?key=k&consistency=strong", "", "", 400},
		{"get: missing key", "GET", prim + "/kv/get?key=k", "", "", 404},
		{"get: primary read on a replica", "GET", repl + "/kv/get?key=k", "", "", clusterkit.StatusNotOwner},
		{"delete: malformed JSON", "POST", prim + "/kv/delete", "", `{`, 400},
		{"delete: no key", "POST", prim + "/kv/delete", "", `{}`, 400},
		{"delete: key over 1 KiB", "POST", prim + "/kv/delete", "", `{"key":"` + bigKey + `"}`, 413},
		{"delete: on a replica", "POST", repl + "/kv/delete", "", `{"key":"k"}`, clusterkit.StatusNotOwner},
		{"unknown endpoint", "GET", prim + "/kv/nope", "", "", 404},
		{"replicate: wrong content type", "POST", repl + pathReplicate, "application/json", `{}`, 415},
		{"replicate: garbage", "POST", repl + pathReplicate, contentTypeBatch, "garbage", 400},
		{"stream: no partition", "GET", prim + pathStream, "", "", 400},
		{"stream: partition out of range", "GET", prim + pathStream + "?partition=99", "", "", 400},
		{"stream: bad since", "GET", prim + pathStream + "?partition=0&since=-1&inc=1", "", "", 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, tt.url, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.code {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.code, b)
			}
			if resp.Header.Get(clusterkit.HeaderMapVersion) == "" {
				t.Fatalf("no %s header", clusterkit.HeaderMapVersion)
			}
			if tt.code == clusterkit.StatusNotOwner {
				var body clusterkit.NotOwnerBody
				if err := json.Unmarshal(b, &body); err != nil || body.Error == "" || body.MapVersion == 0 ||
					body.Partition != r.Partition || body.Primary != r.Primary.ID {
					t.Fatalf("not-owner body %s (%v): want the partition %d, primary %s and a map version", b, err, r.Partition, r.Primary.ID)
				}
				return
			}
			var body clusterkit.ErrorBody
			if err := json.Unmarshal(b, &body); err != nil || body.Error == "" {
				t.Fatalf("body %q is not a JSON error (%v)", b, err)
			}
		})
	}

	// Nothing was written by any of it.
	for _, m := range tc.Running() {
		if n := countRecords(t, tc.server(m.Index).Store()); n != 0 {
			t.Fatalf("%s holds %d records after refused requests", m.ID, n)
		}
	}

	// The limits themselves are accepted: a 1 KiB key, a 1 MiB value
	// (whose JSON body is larger than the 1 MB limit of the library's
	// own endpoints), escaped characters, and deletes of missing keys.
	ctx := context.Background()
	for k, v := range map[string]string{
		strings.Repeat("k", MaxKeyBytes): "v",
		"big":                            strings.Repeat("v", MaxValueBytes),
		"quoted \"key\"\n":               "\x00\x01 \"é\" \u2028",
		"empty":                          "",
	} {
		if err := c.Set(ctx, k, v); err != nil {
			t.Fatalf("set %.20q (%d bytes): %v", k, len(v), err)
		}
		if got, err := c.Get(ctx, k); err != nil || got != v {
			t.Fatalf("get %.20q: %d bytes, %v; want %d bytes", k, len(got), err, len(v))
		}
	}
	rd, err := c.SDK().Route("never-set")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+rd.Primary.IP+"/kv/delete", "application/json", bytes.NewReader([]byte(`{"key":"never-set"}`)))
	if err != nil {
		t.Fatal(err)
	}
	var del DeleteResponse
	if err := json.NewDecoder(resp.Body).Decode(&del); err != nil || resp.StatusCode != 200 || del.Deleted {
		t.Fatalf("delete of a missing key: %d %+v %v; want 200, deleted false", resp.StatusCode, del, err)
	}
	resp.Body.Close()
	if _, err := c.Get(ctx, "never-set"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("get after deleting a missing key: %v", err)
	}

	// A replica serves a read with consistency=any once it has the key.
	tc.waitReplicated()
	if got, err := c.GetFrom(ctx, r.Replicas[0], "big"); err != nil || len(got) != MaxValueBytes {
		t.Fatalf("read of the 1 MiB value from the replica: %d bytes, %v", len(got), err)
	}
}

// countRecords counts the keys (values and tombstones) of a store.
func countRecords(t testing.TB, s *store.Store) int {
	t.Helper()
	parts, err := s.Partitions()
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, p := range parts {
		err := s.Scan(p, 0, store.All, false, func(e *store.Entry) bool {
			keys[fmt.Sprint(p, e.Record.Key)] = true
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return len(keys)
}
