package server

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kit/api"
	"clusterkit.dev/services/kit/stream"
)

// A batch of forwarded ops (POST /kv/internal/forward) and its answer:
//
//	request: op* then 'E' | uvarint count
//	op:      kind ('S' set, 'G' get, 'D' delete) | uvarint len(key) | key
//	         [ | uvarint len(value) | value ]   (set only)
//	answer:  per op: uvarint status | uvarint len(body) | body (the JSON
//	         reply), then 'E' | uvarint count

// handleForward serves POST /kv/internal/forward: ops forwarded by another node, run
// here as their primary; an op whose primary is not this node is answered
// 421, never forwarded again. Writes run concurrently, since each waits for
// its replication.
func (s *Server) handleForward(w http.ResponseWriter, r *http.Request) {
	ops, err := readFwdOps(r.Body)
	if err != nil {
		s.writeError(w, api.BodyError(err))
		return
	}
	replies := make([]reply, len(ops))
	var wg sync.WaitGroup
	for i := range ops {
		run := func() {
			start := time.Now()
			role, rep := s.route(r.Context(), ops[i], true)
			replies[i] = rep
			s.m.Observe(ops[i].name(), role, result(rep.Status), start)
		}
		if ops[i].kind == opKindGet {
			run()
		} else {
			wg.Go(run)
		}
	}
	wg.Wait()
	var buf []byte
	for _, rep := range replies {
		buf = binary.AppendUvarint(buf, uint64(rep.Status))
		buf = binary.AppendUvarint(buf, uint64(len(rep.Body)))
		buf = append(buf, rep.Body...)
	}
	buf = stream.AppendEnd(buf, len(replies))
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set(clusterkit.HeaderMapVersion, strconv.FormatUint(s.ck.Version(), 10))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf)
}

func appendFwdOp(dst []byte, o *op) []byte {
	dst = append(dst, o.kind)
	dst = binary.AppendUvarint(dst, uint64(len(o.key)))
	dst = append(dst, o.key...)
	if o.kind == opKindSet {
		dst = binary.AppendUvarint(dst, uint64(len(o.value)))
		dst = append(dst, o.value...)
	}
	return dst
}

// readFwdOps decodes a forwarded batch; keys and values obey the API's
// limits, which the forwarding node checked.
func readFwdOps(r io.Reader) ([]op, error) {
	br := bufio.NewReaderSize(r, 4<<10)
	var ops []op
	for {
		kind, err := br.ReadByte()
		if err != nil {
			return nil, stream.Truncated(err)
		}
		switch kind {
		case stream.FrameEnd:
			n, err := binary.ReadUvarint(br)
			if err != nil {
				return nil, stream.Truncated(err)
			}
			if n != uint64(len(ops)) {
				return nil, fmt.Errorf("forward batch: end frame counts %d ops, received %d", n, len(ops))
			}
			return ops, nil
		case opKindSet, opKindGet, opKindDelete:
		default:
			return nil, fmt.Errorf("forward batch: unknown op %q", kind)
		}
		if len(ops) == fwdMaxOps {
			return nil, fmt.Errorf("forward batch: more than %d ops", fwdMaxOps)
		}
		key, err := stream.ReadField(br, MaxKeySize)
		if err != nil {
			return nil, err
		}
		if len(key) == 0 {
			return nil, errors.New("forward batch: empty key")
		}
		o := op{kind: kind, key: string(key)}
		if kind == opKindSet {
			if o.value, err = stream.ReadField(br, MaxValueSize); err != nil {
				return nil, err
			}
		}
		ops = append(ops, o)
	}
}

// readFwdReplies decodes the answer to a batch of n ops.
func readFwdReplies(r io.Reader, n int) ([]reply, error) {
	br := bufio.NewReaderSize(r, 4<<10)
	replies := make([]reply, n)
	for i := range replies {
		status, err := binary.ReadUvarint(br)
		if err != nil {
			return nil, stream.Truncated(err)
		}
		if status < 100 || status > 599 {
			return nil, fmt.Errorf("forward batch: status %d", status)
		}
		body, err := stream.ReadField(br, maxWireValue)
		if err != nil {
			return nil, err
		}
		replies[i] = reply{Status: int(status), Body: body}
	}
	kind, err := br.ReadByte()
	if err != nil {
		return nil, stream.Truncated(err)
	}
	count, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, stream.Truncated(err)
	}
	if kind != stream.FrameEnd || count != uint64(n) {
		return nil, fmt.Errorf("forward batch: bad end frame after %d replies", n)
	}
	return replies, nil
}
