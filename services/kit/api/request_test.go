package api

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
)

// TestReadBody checks the bounds of a request body: inclusive, a longer
// body refused by its Content-Length or by what arrives (413), and a failed
// read a 400.
func TestReadBody(t *testing.T) {
	status := func(err error) int {
		var e *Error
		if !errors.As(err, &e) {
			return 0
		}
		return e.Status
	}
	r := httptest.NewRequest(http.MethodPost, "/kv/set", strings.NewReader("12345"))
	if b, err := ReadBody(r, 5); err != nil || string(b) != "12345" {
		t.Errorf("a body at the limit: %q, %v", b, err)
	}
	r = httptest.NewRequest(http.MethodPost, "/kv/set", strings.NewReader("123456"))
	if _, err := ReadBody(r, 5); status(err) != http.StatusRequestEntityTooLarge {
		t.Errorf("a declared body over the limit: %v", err)
	}
	r = httptest.NewRequest(http.MethodPost, "/kv/set", strings.NewReader("123456"))
	r.ContentLength = -1
	if _, err := ReadBody(r, 5); status(err) != http.StatusRequestEntityTooLarge {
		t.Errorf("a sent body over the limit: %v", err)
	}
	r = httptest.NewRequest(http.MethodPost, "/kv/set", nil)
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(strings.NewReader("12")), 1)
	r.ContentLength = -1
	if _, err := ReadBody(r, 5); status(err) != http.StatusRequestEntityTooLarge {
		t.Errorf("a body cut by MaxBytesReader: %v", err)
	}
	r = httptest.NewRequest(http.MethodPost, "/kv/set", iotest.ErrReader(errors.New("reset")))
	r.ContentLength = 3
	if _, err := ReadBody(r, 5); status(err) != http.StatusBadRequest {
		t.Errorf("a failed read: %v", err)
	}
}

// TestQuery checks the key and boolean query parameters.
func TestQuery(t *testing.T) {
	for _, tt := range []struct {
		query  string
		status int
	}{{"key=a", 0}, {"key=abcd", 0}, {"", 400}, {"key=", 400}, {"key=abcde", 413}} {
		key, err := QueryKey(httptest.NewRequest(http.MethodGet, "/kv/get?"+tt.query, nil), 4)
		var e *Error
		switch {
		case tt.status == 0 && (err != nil || key != strings.TrimPrefix(tt.query, "key=")):
			t.Errorf("%q: %q, %v", tt.query, key, err)
		case tt.status != 0 && (!errors.As(err, &e) || e.Status != tt.status):
			t.Errorf("%q: %v, want %d", tt.query, err, tt.status)
		}
	}
	for query, want := range map[string]bool{"": false, "local=": false, "local=true": true, "local=0": false, "local=1": true} {
		if got, err := QueryBool(httptest.NewRequest(http.MethodGet, "/kv/get?"+query, nil), "local"); err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", query, got, err, want)
		}
	}
	if _, err := QueryBool(httptest.NewRequest(http.MethodGet, "/kv/get?local=maybe", nil), "local"); err == nil {
		t.Error("local=maybe accepted")
	}
	if key, local, err := ReadQuery(httptest.NewRequest(http.MethodGet, "/kv/get?key=a&local=true", nil), 4); key != "a" || !local || err != nil {
		t.Errorf("ReadQuery: %q %v %v", key, local, err)
	}
	for _, query := range []string{"local=true", "key=a&local=maybe", "key=abcde"} {
		if _, _, err := ReadQuery(httptest.NewRequest(http.MethodGet, "/kv/get?"+query, nil), 4); err == nil {
			t.Errorf("ReadQuery accepted %q", query)
		}
	}
}
