package kittest

import (
	"fmt"

	"clusterkit.dev/services/kit/migrate"
)

// Holds reports whether server s's store holds any record of partition p,
// tombstones included: how a test looks into a service's store.
type Holds[S any] func(s S, p int) (bool, error)

// CheckNoneHeld checks that no running member's store holds a record of
// any partition.
func (tc *Cluster[S, V]) CheckNoneHeld(holds Holds[S]) {
	tc.T.Helper()
	for _, m := range tc.C.Running() {
		s := tc.Server(m.Index)
		for p := range m.CK.PartitionCount() {
			if held, err := holds(s, p); err != nil || held {
				tc.T.Fatalf("node %d holds records of partition %d (%v)", m.Index, p, err)
			}
		}
	}
}

// CheckDropped waits until no running member's store holds a record of a
// partition it does not own in its map: a node that gave partitions away
// deletes them (migrate.Dropper).
func (tc *Cluster[S, V]) CheckDropped(holds Holds[S]) {
	tc.T.Helper()
	tc.C.Eventually("lost partitions dropped", func() error {
		for _, m := range tc.C.Running() {
			s := tc.Server(m.Index)
			for _, p := range m.CK.Partitions() {
				if migrate.Owner(&p, m.ID) {
					continue
				}
				if held, err := holds(s, p.Index); err != nil || held {
					return fmt.Errorf("%s still holds %s it does not own (%v)", m.ID, p.ID, err)
				}
			}
		}
		return nil
	})
}

// CheckOwnsSome checks that member i owns a partition in member 0's map:
// a node that joined took its share.
func (tc *Cluster[S, V]) CheckOwnsSome(i int) {
	tc.T.Helper()
	id := tc.C.Member(i).ID
	for _, p := range tc.C.Member(0).CK.Partitions() {
		if migrate.Owner(&p, id) {
			return
		}
	}
	tc.T.Fatalf("%s owns no partition after joining", id)
}

// Read reads key of partition p from server s's store: its value, and
// whether the store holds a record of it.
type Read[S any] func(s S, p int, key string) (value []byte, found bool, err error)

// CheckHeld checks that member i's store holds every key of want whose
// partition the member owns in its map, with want's value: a node back
// from a restart kept what it stored and caught up what it missed.
func (tc *Cluster[S, V]) CheckHeld(i int, want map[string]string, read Read[S]) {
	tc.T.Helper()
	m, s := tc.C.Member(i), tc.Server(i)
	missing := 0
	for k, v := range want {
		p, err := m.CK.GetPartition(k)
		if err != nil {
			tc.T.Fatalf("%s: %v", m.ID, err)
		}
		if !migrate.Owner(p, m.ID) {
			continue
		}
		value, found, err := read(s, p.Index, k)
		if err != nil || !found || string(value) != v {
			missing++
			if missing < 5 {
				tc.T.Logf("%s (%s, epoch %d): found=%v value=%q want %q err=%v", k, p.ID, p.Epoch, found, value, v, err)
			}
		}
	}
	if missing > 0 {
		tc.T.Fatalf("%s lacks %d of the keys it owns", m.ID, missing)
	}
}
