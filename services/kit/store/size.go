package store

import "fmt"

// Size estimates the bytes partition p takes on disk: the data Pebble has
// flushed to its tables (what is still in the memtable and the log is not
// counted, so a young partition may read 0). Cheap enough for every
// request of ClusterKit's GET /partitions/sizes.
func (s *Store) Size(p int) (int64, error) {
	if err := checkPartition(p); err != nil {
		return 0, err
	}
	if s.shut.Load() {
		return 0, ErrClosed
	}
	lower, upper := partitionBounds(p)
	n, err := s.db.EstimateDiskUsage(lower, upper)
	if err != nil {
		return 0, fmt.Errorf("store: size of partition %d: %w", p, err)
	}
	return int64(n), nil
}
