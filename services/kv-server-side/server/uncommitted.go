package server

import (
	"sync"

	"clusterkit.dev/services/kv-server-side/internal/store"
)

// uncommitted tracks, on a primary, the writes it stored but has not seen
// stored on a majority of owners: in flight, or failed (a 503 whose write
// stayed in this node's store). A read of such a key must not return the
// write as it stands: if the primary died now, the owners that would
// promote a new one may not hold it, and a later read would go back to
// the older value. readPrimary replicates the write again first and
// returns it only once a majority holds it.
type uncommitted struct {
	mu   sync.Mutex
	keys map[pkey]store.Version // key -> newest version stored, not yet committed
}

type pkey struct {
	partition int
	key       string
}

func newUncommitted() *uncommitted { return &uncommitted{keys: map[pkey]store.Version{}} }

// begin records that v of key is being written: from now until commit,
// reads of key replicate first.
func (u *uncommitted) begin(p int, key string, v store.Version) {
	u.mu.Lock()
	defer u.mu.Unlock()
	k := pkey{p, key}
	if old, ok := u.keys[k]; !ok || old.Less(v) {
		u.keys[k] = v
	}
}

// commit records that v of key is on a majority of owners: it and every
// older version are committed.
func (u *uncommitted) commit(p int, key string, v store.Version) {
	u.mu.Lock()
	defer u.mu.Unlock()
	k := pkey{p, key}
	if old, ok := u.keys[k]; ok && !v.Less(old) {
		delete(u.keys, k)
	}
}

// pending reports whether v of key, or a newer version, is not known to be
// committed.
func (u *uncommitted) pending(p int, key string, v store.Version) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	old, ok := u.keys[pkey{p, key}]
	return ok && !old.Less(v)
}

// forget drops every key of partition p (this node is no longer its
// primary).
func (u *uncommitted) forget(p int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for k := range u.keys {
		if k.partition == p {
			delete(u.keys, k)
		}
	}
}
