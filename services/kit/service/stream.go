package service

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kit/api"
	"clusterkit.dev/services/kit/migrate"
	"clusterkit.dev/services/kit/records"
)

// Stream is how a node serves GET /kv/internal/stream?partition=N
// (migrate.StreamPath) to another that copies partition N.
type Stream[V records.Version[V]] struct {
	CK    *clusterkit.ClusterKit
	Drops *migrate.Dropper[V]
	// MapWait bounds the wait for the copier's map (api.AwaitMap).
	MapWait time.Duration
	// WriteTimeout bounds the writing of each page of the stream.
	WriteTimeout time.Duration
	// Check, if not nil, refuses to stream partition p with the error it
	// returns (an *api.Error for its status): a node that does not hold
	// the partition in full, say.
	Check func(p int) error
	// Log receives the streams that fail.
	Log *slog.Logger
}

// ServeHTTP serves the stream: every record of the partition the query
// names that this node holds, tombstones included (Dropper.Send), once
// this node's map is as new as the copier's, so that a write this node
// took before is in the stream and a writer that reaches it later learns
// of the copier from the map version of its answer. A query that names no
// partition is refused with 400. An error mid-stream ends the answer
// without the end frame, which the receiver detects.
func (st *Stream[V]) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, err := migrate.PartitionParam(r, st.CK.PartitionCount())
	if err != nil {
		api.Write(w, st.CK.Version(), api.ErrorReply(api.BadRequest(err.Error())))
		return
	}
	api.AwaitMap(st.CK, r, st.MapWait)
	if st.Check != nil {
		if err := st.Check(p); err != nil {
			api.Write(w, st.CK.Version(), api.ErrorReply(err))
			return
		}
	}
	w.Header().Set(clusterkit.HeaderMapVersion, strconv.FormatUint(st.CK.Version(), 10))
	if _, err := st.Drops.Send(r.Context(), w, p, st.WriteTimeout); err != nil && r.Context().Err() == nil {
		st.Log.Warn("stream aborted", "partition", p, "err", err)
	}
}
