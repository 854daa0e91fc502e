package store

// DropIf drops partition p, with one range delete, if cond, called between
// the Updates before and after, returns true (nil: always). It reports
// whether it dropped a partition that held a key. cond must be quick and
// must not call the Store. Like every update that only deletes, it runs on
// a full disk.
func (s *Store) DropIf(p int, cond func() bool) (bool, error) {
	dropped := false
	err := s.Update(func(tx *Tx) error {
		if cond != nil && !cond() {
			return nil
		}
		any, err := tx.Any(p)
		if err != nil || !any {
			return err
		}
		dropped = true
		return tx.DropPartition(p)
	})
	if err != nil {
		return false, err
	}
	return dropped, nil
}
