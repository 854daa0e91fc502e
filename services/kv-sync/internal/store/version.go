package store

import "clusterkit.dev/services/kit/records"

// Version orders the writes of one key: a record with a greater Version
// replaces one with a smaller Version, wherever and in whatever order the
// two arrive. The zero Version is older than every write.
//
// Versions are (counter, writer) pairs, as in the ABD quorum protocol: a
// writer first reads the greatest version from a majority of the owners,
// then writes with the next counter and its own writer ID, so that a write
// that starts after another finished always gets a greater version, and two
// concurrent writes never get the same one.
type Version struct {
	Counter uint64 `json:"counter"`
	Writer  uint64 `json:"writer"`
}

// Compare returns -1, 0 or +1 as v is older than, equal to or newer than
// o: by counter, then by writer.
func (v Version) Compare(o Version) int {
	return records.ComparePairs(v.Counter, v.Writer, o.Counter, o.Writer)
}

// Less reports whether v is older than o.
func (v Version) Less(o Version) bool { return v.Compare(o) < 0 }

// IsZero reports whether v is the zero Version.
func (v Version) IsZero() bool { return v == Version{} }

// String formats v as "counter.writer".
func (v Version) String() string { return records.FormatPair(v.Counter, v.Writer) }

// Pair returns the counter and the writer, the order of versions.
func (v Version) Pair() (hi, lo uint64) { return v.Counter, v.Writer }
