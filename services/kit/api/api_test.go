package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
)

func newCK(t *testing.T, token string) *clusterkit.ClusterKit {
	t.Helper()
	ck, err := clusterkit.NewClusterKit(clusterkit.Options{NodeID: "node-1", HTTPAddr: "127.0.0.1:1", ClusterToken: token})
	if err != nil {
		t.Fatal(err)
	}
	return ck
}

// TestWriteAnswersJSONWithTheMapVersion checks the error writer: an
// *Error's status and message (wrapped too), 500 for any other error, the
// map version on every answer and Retry-After on a 503.
func TestWriteAnswersJSONWithTheMapVersion(t *testing.T) {
	for _, tt := range []struct {
		err    error
		status int
		msg    string
	}{
		{BadRequest("key is required"), 400, "key is required"},
		{fmt.Errorf("decode: %w", TooLarge("value is 2 MiB")), 413, "value is 2 MiB"},
		{Unavailable("node starting"), 503, "node starting"},
		{Unauthorized(), 401, clusterkit.ErrUnauthorized.Error()},
		{errors.New("disk on fire"), 500, "disk on fire"},
	} {
		w := httptest.NewRecorder()
		if got := Write(w, 42, ErrorReply(tt.err)); got != tt.status || w.Code != tt.status {
			t.Errorf("%v: returned %d, wrote %d, want %d", tt.err, got, w.Code, tt.status)
		}
		var body struct{ Error string }
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error != tt.msg {
			t.Errorf("%v: body %q (%v), want error %q", tt.err, w.Body, err, tt.msg)
		}
		h := w.Header()
		if h.Get(clusterkit.HeaderMapVersion) != "42" || h.Get("Content-Type") != "application/json" {
			t.Errorf("%v: headers %v", tt.err, h)
		}
		if (h.Get("Retry-After") == "1") != (tt.status == 503) {
			t.Errorf("%v: Retry-After %q", tt.err, h.Get("Retry-After"))
		}
	}
	if rep := JSON(200, func() {}); rep.Status != 500 {
		t.Errorf("an answer that cannot be encoded: %d %s", rep.Status, rep.Body)
	}
}

func TestResult(t *testing.T) {
	for status, want := range map[int]string{
		200: ResultOK, 204: ResultOK, 400: ResultBadRequest, 401: ResultBadRequest, 404: ResultNotFound,
		413: ResultTooLarge, clusterkit.StatusNotOwner: ResultNotOwner, 503: ResultUnavailable,
		504: ResultUnavailable, 500: ResultError,
	} {
		if got := Result(status); got != want {
			t.Errorf("Result(%d) = %s, want %s", status, got, want)
		}
	}
}

// TestInterceptGuardsInternalRoutes serves the middleware on the node's
// HTTP server (echo) and checks that it serves /kv/ routes with the
// service's handler, hands others on, and refuses the routes under
// /kv/internal/ and those the service guards without the cluster token,
// counting the refusal.
func TestInterceptGuardsInternalRoutes(t *testing.T) {
	ck := newCK(t, "s3cret-s3cret-s3cret")
	served := 0
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served++
		Write(w, ck.Version(), JSON(200, map[string]string{"path": r.URL.Path}))
	})
	e := ck.Echo()
	e.Pre(Intercept(ck, h, func(r *http.Request) bool { return r.URL.Query().Has("local") }))
	srv := httptest.NewServer(e)
	defer srv.Close()

	get := func(path, token string) int {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == 401 {
			var body struct{ Error string }
			if json.NewDecoder(resp.Body).Decode(&body) != nil || body.Error == "" {
				t.Errorf("%s: 401 without a JSON error", path)
			}
		}
		return resp.StatusCode
	}
	for _, tt := range []struct {
		path, token string
		status      int
	}{
		{"/kv/get?key=a", "", 200},
		{"/kv/get?key=a&local=true", "", 401},
		{"/kv/get?key=a&local=true", "wrong", 401},
		{"/kv/get?key=a&local=true", "s3cret-s3cret-s3cret", 200},
		{"/kv/internal/stream?partition=0", "", 401},
		{"/kv/internal/stream?partition=0", "s3cret-s3cret-s3cret", 200},
	} {
		if got := get(tt.path, tt.token); got != tt.status {
			t.Errorf("%s with token %q: %d, want %d", tt.path, tt.token, got, tt.status)
		}
	}
	if served != 3 {
		t.Errorf("the handler served %d requests, want 3", served)
	}
	// Not a /kv/ route: the library's router answers.
	if got := get("/kvx", ""); got != http.StatusNotFound || served != 3 {
		t.Errorf("/kvx: %d, served %d", got, served)
	}
	samples := cktest.Samples(t, ck.Registry())
	if v := samples[`clusterkit_unauthorized_requests_total{route="/kv/internal/stream"}`]; v != 1 {
		t.Errorf("unauthorized streams counted %v, want 1", v)
	}
}

// TestRequestMetricsStartAtZero checks that every op, role and result
// series exists at 0 before any request, and that Observe counts.
func TestRequestMetricsStartAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewRequestMetrics("svc", map[string][]string{"get": {"primary", "none"}, "set": {"primary"}}, "requests", "time")
	if err := Register(reg, "svc", m.Collectors()...); err != nil {
		t.Fatal(err)
	}
	if err := Register(reg, "svc", m.Collectors()...); err == nil || !strings.Contains(err.Error(), "one server per ClusterKit") {
		t.Fatalf("registering twice: %v", err)
	}
	m.Observe("get", "primary", ResultNotFound, time.Now())
	got := cktest.Samples(t, reg)
	n := 0
	for name, v := range got {
		if !strings.HasPrefix(name, "svc_requests_total") {
			continue
		}
		n++
		want := 0.0
		if name == `svc_requests_total{op="get",result="not_found",role="primary"}` {
			want = 1
		}
		if v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	if n != 3*len(Results) {
		t.Errorf("%d request series, want %d", n, 3*len(Results))
	}
	if got[`svc_request_duration_seconds_count{op="set",role="primary"}`] != 0 {
		t.Error("no latency series at 0 for set/primary")
	}
}

func TestRoutesFind(t *testing.T) {
	hit := false
	rs := Routes{"/kv/get": {Method: http.MethodGet, Handle: func(http.ResponseWriter, *http.Request) { hit = true }}}
	for _, tt := range []struct {
		method, path string
		status       int
	}{{http.MethodGet, "/kv/get", 0}, {http.MethodPost, "/kv/get", 405}, {http.MethodGet, "/kv/nothing", 404}} {
		w := httptest.NewRecorder()
		h := rs.Find(w, httptest.NewRequest(tt.method, tt.path, nil), 7)
		if (h != nil) != (tt.status == 0) || tt.status != 0 && w.Code != tt.status {
			t.Errorf("%s %s: handler %v, answered %d; want %d", tt.method, tt.path, h != nil, w.Code, tt.status)
		}
		if tt.status == 405 && w.Header().Get("Allow") != http.MethodGet {
			t.Errorf("405 with Allow %q", w.Header().Get("Allow"))
		}
		if h != nil {
			h(w, nil)
		}
	}
	if !hit {
		t.Error("the route's handler was not returned")
	}
}

// TestRefuse checks that a refusal is a 503 with the map version, counted
// unless its op is "", and that a Counted handler counts what it answered.
func TestRefuse(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewRequestMetrics("svc", map[string][]string{"get": {"none"}}, "requests", "time")
	if err := Register(reg, "svc", m.Collectors()...); err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	if got := m.Refuse(w, 9, "get", "none", "node starting"); got != 503 || w.Code != 503 ||
		w.Header().Get(clusterkit.HeaderMapVersion) != "9" || !strings.Contains(w.Body.String(), "node starting") {
		t.Errorf("Refuse: %d, wrote %d %v %s", got, w.Code, w.Header(), w.Body)
	}
	m.Refuse(httptest.NewRecorder(), 9, "", "none", "not counted")
	h := m.Counted("get", func(w http.ResponseWriter, r *http.Request) (string, int) {
		return "none", Write(w, 9, JSON(http.StatusServiceUnavailable, nil))
	})
	h(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/kv/get", nil))
	if v := cktest.Samples(t, reg)[`svc_requests_total{op="get",result="unavailable",role="none"}`]; v != 2 {
		t.Errorf("503s counted %v, want 2", v)
	}
}
