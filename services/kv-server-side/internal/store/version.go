package store

import "clusterkit.dev/services/kit/records"

// Version orders the writes of one key: a record with a greater Version
// replaces one with a smaller Version, wherever and in whatever order the two
// arrive. The zero Version is older than every write.
//
// Epoch is the partition epoch of the primary that accepted the write and Seq
// orders the writes of that primary: only one node is primary in an epoch.
// The epoch is compared first, so every write accepted by a newer primary
// wins over every write of a deposed one, even when the new primary has not
// yet copied the key.
type Version struct {
	Epoch uint64 `json:"epoch"`
	Seq   uint64 `json:"seq"`
}

// Compare returns -1, 0 or +1 as v is older than, equal to or newer than
// o: by epoch, then by seq.
func (v Version) Compare(o Version) int { return records.ComparePairs(v.Epoch, v.Seq, o.Epoch, o.Seq) }

// Less reports whether v is older than o.
func (v Version) Less(o Version) bool { return v.Compare(o) < 0 }

// IsZero reports whether v is the zero Version.
func (v Version) IsZero() bool { return v == Version{} }

// String formats v as "epoch.seq".
func (v Version) String() string { return records.FormatPair(v.Epoch, v.Seq) }

// Pair returns the epoch and the seq, the order of versions.
func (v Version) Pair() (hi, lo uint64) { return v.Epoch, v.Seq }
