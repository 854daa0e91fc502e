package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"clusterkit.dev/services/kit/records"
)

// Merging a pulled partition: a batch is merged once it holds mergeBatch
// records or mergeBytes of keys and values.
const (
	mergeBatch = 1024
	mergeBytes = 1 << 20
)

// Merger stores records by version. *records.Store is one.
type Merger[V records.Version[V]] interface {
	Merge(entries []records.Entry[V]) (int, error)
}

// Pull describes the copy of one partition from one source.
type Pull[V records.Version[V]] struct {
	// Source names the source in errors.
	Source string
	// Partition is the partition copied.
	Partition int
	// Open sends the request for the stream (its context is the copy's).
	Open func(ctx context.Context) (*http.Response, error)
	// IdleTimeout fails the copy with ErrIdle when the source sends
	// nothing for this long, before its answer's header or mid-stream.
	IdleTimeout time.Duration
	// Version makes a V of its two numbers; Limits bound the records.
	Version func(hi, lo uint64) V
	Limits  Limits
	// Into receives the records, in batches.
	Into Merger[V]
}

// Run reads the stream and merges it into Into as it goes, and returns
// what it merged: records, and bytes of their keys and values. A stream cut
// short fails the copy, and what was merged before stays, being correct
// (records merge by version). The time spent merging does not count as the
// source's idle time.
func (pl Pull[V]) Run(ctx context.Context) (got Sent, err error) {
	ctx, idle := WatchIdle(ctx, pl.Source, pl.IdleTimeout)
	defer func() { err = idle.Stop(err) }()
	resp, err := pl.Open(ctx)
	if err != nil {
		return got, err
	}
	defer resp.Body.Close()
	alive := idle.Alive
	alive()
	body := idle.Reader(resp.Body)
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(body, 1024))
		return got, fmt.Errorf("%s answered %s: %s", pl.Source, resp.Status, msg)
	}
	fr := NewReader(body, pl.Version, pl.Limits)
	batch := make([]records.Entry[V], 0, mergeBatch)
	batchBytes := 0
	flush := func() error {
		_, err := pl.Into.Merge(batch)
		batch, batchBytes = batch[:0], 0
		alive()
		return err
	}
	for {
		rec, err := fr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if ferr := flush(); ferr != nil {
				return got, ferr
			}
			return got, fmt.Errorf("stream from %s: %w", pl.Source, err)
		}
		n := len(rec.Key) + len(rec.Value)
		got.Records++
		got.Bytes += n
		batchBytes += n
		batch = append(batch, records.Entry[V]{Partition: pl.Partition, Record: rec})
		if len(batch) >= mergeBatch || batchBytes >= mergeBytes {
			if err := flush(); err != nil {
				return got, err
			}
		}
	}
	return got, flush()
}
