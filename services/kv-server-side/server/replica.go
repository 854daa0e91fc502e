package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kit/api"
	"clusterkit.dev/services/kit/migrate"
	"clusterkit.dev/services/kv-server-side/internal/store"
)

// senderMapWait bounds how long a request from a node with a newer map
// than this node's waits for it (api.AwaitMap), so that a node just made
// an owner accepts it.
const senderMapWait = time.Second

// MaxClockSkew bounds how far a replicated write's sequence number may be
// ahead of the receiving node's clock. A sequence number is a reading of
// the primary's clock (wall-clock milliseconds shifted left by 16 bits), so
// one from further ahead was not made by a member whose clock agrees with
// this node's: it is refused, since a record of the current epoch with a
// sequence number far ahead would win over every real write of its key
// made before the clocks reach it. Members' clocks must agree within
// MaxClockSkew, or replication between them is refused.
const MaxClockSkew = 5 * time.Second

// seqCeiling returns the greatest sequence number a replicated write may
// carry at time now.
func seqCeiling(now time.Time) uint64 {
	return uint64(now.Add(MaxClockSkew).UnixMilli())<<16 | 0xffff
}

// handleReplicate serves POST /kv/internal/replicate: writes sent by a primary.
// A batch holding a malformed record (see frameReader.next) or a record
// whose sequence number is beyond seqCeiling is refused whole with 400,
// and nothing of it is stored. Each record is then checked against this
// node's map: it must own the partition, the record's epoch must not be
// older than the partition's (a deposed primary is refused) nor newer
// (this node's map is behind, or the epoch is forged: it answers not
// owner, as when it does not own the partition), and a record of the
// partition's current epoch is refused (not owner) by the partition's
// primary, since only the primary itself numbers writes of its epoch. When
// the sender's map is newer, the node first waits briefly for it, so that
// a node just added as owner accepts its first writes.
func (s *Server) handleReplicate(w http.ResponseWriter, r *http.Request) {
	api.AwaitMap(s.ck, r, senderMapWait)
	fr := newFrameReader(r.Body)
	ceiling := seqCeiling(time.Now())
	var entries []store.Entry
	var statuses []byte
	for {
		rec, err := fr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			s.writeError(w, api.BodyError(err))
			return
		}
		if rec.Version.Seq > ceiling {
			s.writeError(w, errBadRequest(fmt.Sprintf("record %q: seq %d is ahead of this node's clock by more than %v (ceiling %d)",
				rec.Key, rec.Version.Seq, MaxClockSkew, ceiling)))
			return
		}
		p, perr := s.ck.GetPartition(rec.Key)
		switch {
		case perr != nil || !migrate.Owner(p, s.self):
			statuses = append(statuses, statusNotOwner)
		case rec.Version.Epoch < p.Epoch:
			statuses = append(statuses, statusStaleEpoch)
		case rec.Version.Epoch > p.Epoch, rec.Version.Epoch == p.Epoch && p.PrimaryNode == s.self:
			statuses = append(statuses, statusNotOwner)
		default:
			statuses = append(statuses, statusStored)
			entries = append(entries, store.Entry{Partition: p.Index, Record: rec})
		}
	}
	if _, err := s.store.Merge(entries); err != nil {
		s.writeError(w, fmt.Errorf("store merge: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set(clusterkit.HeaderMapVersion, strconv.FormatUint(s.ck.Version(), 10))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(statuses)
}
