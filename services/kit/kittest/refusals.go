package kittest

import (
	"encoding/json"
	"net/http"
	"strings"

	"clusterkit.dev/clusterkit"
)

// Refusal is a request the KV API refuses, and the status it answers.
type Refusal struct {
	Name         string
	Method, Path string
	Body         string // "" sends none
	Status       int
}

// BadInput returns the requests every service's KV API refuses alike,
// for a service whose keys are at most maxKey bytes, values at most
// maxValue and request bodies at most maxBody: malformed and incomplete
// writes, keys, values and bodies over their limits, reads and deletes
// without a key, a read of a key never written (404), an unknown route or
// method, and streams of partitions that do not exist.
func BadInput(maxKey, maxValue, maxBody int) []Refusal {
	longKey := strings.Repeat("k", maxKey+1)
	bigValue := strings.Repeat("v", maxValue+1)
	setBody := func(key, value string) string {
		b, _ := json.Marshal(map[string]string{"key": key, "value": value})
		return string(b)
	}
	return []Refusal{
		{"malformed JSON", http.MethodPost, "/kv/set", `{"key":"a","value":`, http.StatusBadRequest},
		{"not an object", http.MethodPost, "/kv/set", `["a","b"]`, http.StatusBadRequest},
		{"missing key", http.MethodPost, "/kv/set", `{"value":"v"}`, http.StatusBadRequest},
		{"empty key", http.MethodPost, "/kv/set", `{"key":"","value":"v"}`, http.StatusBadRequest},
		{"missing value", http.MethodPost, "/kv/set", `{"key":"a"}`, http.StatusBadRequest},
		{"value not a string", http.MethodPost, "/kv/set", `{"key":"a","value":5}`, http.StatusBadRequest},
		{"key too long", http.MethodPost, "/kv/set", setBody(longKey, "v"), http.StatusRequestEntityTooLarge},
		{"value too long", http.MethodPost, "/kv/set", setBody("a", bigValue), http.StatusRequestEntityTooLarge},
		{"body too long", http.MethodPost, "/kv/set", strings.Repeat(" ", maxBody+1), http.StatusRequestEntityTooLarge},
		{"get without key", http.MethodGet, "/kv/get", "", http.StatusBadRequest},
		{"get of a long key", http.MethodGet, "/kv/get?key=" + longKey, "", http.StatusRequestEntityTooLarge},
		{"get of a missing key", http.MethodGet, "/kv/get?key=absent", "", http.StatusNotFound},
		{"bad local flag", http.MethodGet, "/kv/get?key=a&local=maybe", "", http.StatusBadRequest},
		{"delete without key", http.MethodPost, "/kv/delete", `{}`, http.StatusBadRequest},
		{"DELETE without key", http.MethodDelete, "/kv/key", "", http.StatusBadRequest},
		{"unknown endpoint", http.MethodGet, "/kv/nope", "", http.StatusNotFound},
		{"wrong method", http.MethodGet, "/kv/set", "", http.StatusMethodNotAllowed},
		{"stream of no partition", http.MethodGet, "/kv/internal/stream?partition=x", "", http.StatusBadRequest},
		{"stream of a negative partition", http.MethodGet, "/kv/internal/stream?partition=-1", "", http.StatusBadRequest},
		{"stream past the last partition", http.MethodGet, "/kv/internal/stream?partition=100000", "", http.StatusBadRequest},
	}
}

// CheckRefused sends each request of rs to every running member (owner
// or not, each must refuse alike) and checks that it answers the
// request's status with a JSON error and the node's map version.
func (tc *Cluster[S, V]) CheckRefused(rs []Refusal) {
	tc.T.Helper()
	for _, c := range rs {
		for _, m := range tc.C.Running() {
			var body []byte
			if c.Body != "" {
				body = []byte(c.Body)
			}
			a := tc.Do(m.Index, c.Method, c.Path, body, nil)
			if a.Status != c.Status || a.Err == "" {
				tc.T.Errorf("%s via node %d: %d %.200s, want %d with a JSON error", c.Name, m.Index, a.Status, a.Body, c.Status)
			}
			if a.Header.Get(clusterkit.HeaderMapVersion) == "" {
				tc.T.Errorf("%s: answer without %s", c.Name, clusterkit.HeaderMapVersion)
			}
		}
	}
}
