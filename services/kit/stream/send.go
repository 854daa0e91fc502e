package stream

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"time"

	"clusterkit.dev/services/kit/records"
)

// Sending a partition.
const (
	// page is how many records Send reads from the store at a time.
	page = 512
	// chunk is how many bytes of keys and values Send writes per
	// extension of its write deadline.
	chunk = 1 << 20
)

// Scanner reads a partition a page at a time: up to limit records of
// partition p, tombstones included, in key order after the key after (""
// for the first); an empty page ends the partition. *records.Store is one.
type Scanner[V records.Version[V]] interface {
	Scan(p int, after string, limit int) ([]records.Record[V], error)
}

// Sent is what Send wrote: records, and bytes of their keys and values.
type Sent struct {
	Records, Bytes int
}

// Send answers a request for partition p with its records read from src,
// tombstones included, and an end frame: status 200, application/octet-stream
// (the caller sets any other header first). It reads src a page at a time,
// so a slow reader never holds the store. Each megabyte of keys and values
// gets writeTimeout to go out, so a receiver that stops reading holds the
// stream that long only while a long copy that makes progress is never cut.
//
// An error (the store's, or the receiver gone, or ctx done) ends the answer
// without the end frame, which the receiver detects; Send returns it with
// what it had sent.
func Send[V records.Version[V]](ctx context.Context, w http.ResponseWriter, src Scanner[V], p int, writeTimeout time.Duration) (Sent, error) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	extend := func() { _ = rc.SetWriteDeadline(time.Now().Add(writeTimeout)) }
	extend()
	bw := bufio.NewWriterSize(w, 64<<10)
	var (
		buf      []byte
		after    string
		sent     Sent
		extended int // sent.Bytes when the deadline was last extended
	)
	for {
		recs, err := src.Scan(p, after, page)
		if err != nil {
			return sent, fmt.Errorf("stream partition %d: %w", p, err)
		}
		if len(recs) == 0 {
			break
		}
		for i := range recs {
			buf = AppendRecord(buf[:0], &recs[i])
			if _, err := bw.Write(buf); err != nil {
				return sent, fmt.Errorf("stream partition %d: %w", p, err)
			}
			sent.Records++
			sent.Bytes += len(recs[i].Key) + len(recs[i].Value)
			if sent.Bytes-extended >= chunk {
				extend()
				extended = sent.Bytes
			}
		}
		after = recs[len(recs)-1].Key
		if err := ctx.Err(); err != nil {
			return sent, fmt.Errorf("stream partition %d: %w", p, err)
		}
	}
	extend()
	if _, err := bw.Write(AppendEnd(buf[:0], sent.Records)); err != nil {
		return sent, fmt.Errorf("stream partition %d: %w", p, err)
	}
	if err := bw.Flush(); err != nil {
		return sent, fmt.Errorf("stream partition %d: %w", p, err)
	}
	return sent, nil
}
