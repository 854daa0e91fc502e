package records

// Size estimates the bytes partition p takes on disk (see store.Size).
func (s *Store[V]) Size(p int) (int64, error) { return s.kv.Size(p) }
