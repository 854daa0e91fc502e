package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// readAhead bounds how far ReadBody's buffer grows ahead of the bytes
// that arrived.
const readAhead = 64 << 10

// ReadBody reads r's body, of at most limit bytes. A body longer than
// limit, by its Content-Length (then not read) or by what arrives, is a
// TooLarge error, as is one an http.MaxBytesReader cut; any other failed
// read is a BadRequest. The buffer grows as the body arrives, at most
// 64 KiB ahead of it, so a Content-Length the body does not deliver costs
// nothing.
func ReadBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, TooLarge(fmt.Sprintf("request body is %d bytes; the limit is %d", r.ContentLength, limit))
	}
	var buf bytes.Buffer
	buf.Grow(int(min(max(r.ContentLength, 0), readAhead)) + 1)
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1)); err != nil {
		if e := BodyError(err); e.Status == http.StatusRequestEntityTooLarge {
			return nil, e
		}
		return nil, BadRequest("read request body: " + err.Error())
	}
	if int64(buf.Len()) > limit {
		return nil, TooLarge(fmt.Sprintf("request body exceeds %d bytes", limit))
	}
	return buf.Bytes(), nil
}

// BodyError is the answer to a request body that a reader or decoder
// refused with err: TooLarge when an http.MaxBytesReader cut it (err or one
// it wraps), BadRequest with err's message otherwise.
func BodyError(err error) *Error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return TooLarge(fmt.Sprintf("request body exceeds %d bytes", mbe.Limit))
	}
	return BadRequest(err.Error())
}

// CheckKey checks a key against the services' rule: not empty
// (BadRequest), and at most maxKey bytes (TooLarge).
func CheckKey(key string, maxKey int) error {
	if key == "" {
		return BadRequest("key must not be empty")
	}
	if len(key) > maxKey {
		return TooLarge(fmt.Sprintf("key is %d bytes; the limit is %d", len(key), maxKey))
	}
	return nil
}

// QueryKey returns r's key query parameter, checked with CheckKey; a
// request without one is a BadRequest.
func QueryKey(r *http.Request, maxKey int) (string, error) {
	q := r.URL.Query()
	if !q.Has("key") {
		return "", BadRequest(`query parameter "key" is required`)
	}
	key := q.Get("key")
	return key, CheckKey(key, maxKey)
}

// QueryBool returns r's boolean query parameter name (strconv.ParseBool),
// false when it is absent or empty; any other value is a BadRequest.
func QueryBool(r *http.Request, name string) (bool, error) {
	raw := r.URL.Query().Get(name)
	if raw == "" {
		return false, nil
	}
	on, err := strconv.ParseBool(raw)
	if err != nil {
		return false, BadRequest(name + " must be true or false, got " + strconv.Quote(raw))
	}
	return on, nil
}

// ReadQuery returns the query of a read, GET /kv/get?key=k&local=b: its
// key (QueryKey) and whether it asks for this node's own record
// (QueryBool of local).
func ReadQuery(r *http.Request, maxKey int) (key string, local bool, err error) {
	if key, err = QueryKey(r, maxKey); err != nil {
		return "", false, err
	}
	if local, err = QueryBool(r, "local"); err != nil {
		return "", false, err
	}
	return key, local, nil
}
