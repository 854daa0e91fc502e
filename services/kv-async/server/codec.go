package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"clusterkit.dev/services/kv-async/internal/jsonstr"
)

// The KV API's JSON, on its hot path: request bodies in their plain form
// ({"key": "...", "value": "..."} with no escape sequences) are read
// without reflection, and answers are written without it, byte for byte
// as encoding/json writes them. Any other body goes through
// encoding/json, which defines the API's behaviour (and its errors).

// decodeSet reads the body of a set.
func decodeSet(w http.ResponseWriter, r *http.Request) (key string, value []byte, err error) {
	body, err := readBody(w, r, maxWriteBody)
	if err != nil {
		return "", nil, err
	}
	var k, v []byte
	if jsonstr.ParseObject(body, func(m jsonstr.Member) bool {
		switch {
		case !m.String:
			return false
		case string(m.Name) == "key" && k == nil:
			k = m.Value
		case string(m.Name) == "value" && v == nil:
			v = m.Value
		default:
			return false
		}
		return true
	}) && k != nil && v != nil {
		// The value keeps the body's bytes: the body is this request's.
		return string(k), v, nil
	}
	var req setRequest
	if err := decodeJSON(body, &req); err != nil {
		return "", nil, err
	}
	switch {
	case req.Key == nil:
		return "", nil, errorf(http.StatusBadRequest, "key is required")
	case req.Value == nil:
		return "", nil, errorf(http.StatusBadRequest, "value is required")
	}
	return *req.Key, []byte(*req.Value), nil
}

// decodeDelete reads the body of a delete.
func decodeDelete(w http.ResponseWriter, r *http.Request) (key string, err error) {
	body, err := readBody(w, r, maxWriteBody)
	if err != nil {
		return "", err
	}
	var k []byte
	if jsonstr.ParseObject(body, func(m jsonstr.Member) bool {
		if !m.String || string(m.Name) != "key" || k != nil {
			return false
		}
		k = m.Value
		return true
	}) && k != nil {
		return string(k), nil
	}
	var req deleteRequest
	if err := decodeJSON(body, &req); err != nil {
		return "", err
	}
	if req.Key == nil {
		return "", errorf(http.StatusBadRequest, "key is required")
	}
	return *req.Key, nil
}

// decodeJSON decodes one JSON value from body, refusing trailing data.
func decodeJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON object")
	}
	switch {
	case err == nil:
		return nil
	case len(bytes.TrimSpace(body)) == 0:
		return errorf(http.StatusBadRequest, "malformed JSON body: empty")
	}
	return errorf(http.StatusBadRequest, "malformed JSON body: %v", err)
}

// appendJSON appends r as encoding/json's Encoder writes it.
func (r *WriteResponse) appendJSON(b []byte) []byte {
	b = append(b, `{"key":`...)
	b = jsonstr.AppendString(b, r.Key)
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(r.Partition), 10)
	b = append(b, `,"version":`...)
	b = jsonstr.AppendString(b, r.Version)
	return append(b, "}\n"...)
}

// appendJSON appends r as encoding/json's Encoder writes it.
func (r *DeleteResponse) appendJSON(b []byte) []byte {
	b = append(b, `{"key":`...)
	b = jsonstr.AppendString(b, r.Key)
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(r.Partition), 10)
	b = append(b, `,"deleted":`...)
	b = strconv.AppendBool(b, r.Deleted)
	if r.Version != "" {
		b = append(b, `,"version":`...)
		b = jsonstr.AppendString(b, r.Version)
	}
	return append(b, "}\n"...)
}

// appendJSON appends r as encoding/json's Encoder writes it.
func (r *GetResponse) appendJSON(b []byte) []byte {
	b = append(b, `{"key":`...)
	b = jsonstr.AppendString(b, r.Key)
	b = append(b, `,"value":`...)
	b = jsonstr.AppendString(b, r.Value)
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(r.Partition), 10)
	b = append(b, `,"version":`...)
	b = jsonstr.AppendString(b, r.Version)
	return append(b, "}\n"...)
}

// contentTypeJSON is the Content-Type header value of JSON answers,
// shared by every answer (net/http only reads it).
var contentTypeJSON = []string{"application/json"}

// writeBody answers with a JSON body already encoded.
func writeBody(w http.ResponseWriter, code int, body []byte) {
	w.Header()["Content-Type"] = contentTypeJSON
	w.WriteHeader(code)
	_, _ = w.Write(body)
}
