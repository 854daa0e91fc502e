package store

import (
	"bytes"
	"errors"
	"fmt"

	kit "clusterkit.dev/services/kit/store"
)

// loadPage is how many keys one read of the shared store covers while
// Open rebuilds the index, and how many old index keys one change
// deletes.
const loadPage = 1024

// loadIndex rebuilds the index from the records of every partition, and
// deletes the index an earlier store kept beside them.
func (s *Store) loadIndex() error {
	ps, err := s.kv.Partitions()
	if err != nil {
		return err
	}
	for _, p := range ps {
		entries, old, err := s.readPartition(p)
		if err != nil {
			return fmt.Errorf("partition %d: %w", p, err)
		}
		s.index.load(p, entries)
		if err := s.deleteKeys(p, old); err != nil {
			return fmt.Errorf("partition %d: delete the old index: %w", p, err)
		}
	}
	return nil
}

// readPartition returns the index entries of partition p's records, and
// the keys of an old index.
func (s *Store) readPartition(p int) (entries []logEntry, old [][]byte, err error) {
	var after []byte
	for {
		n, err := s.kv.Scan(p, after, loadPage, func(k, v []byte) error {
			after = append(after[:0], k...)
			switch {
			case len(k) == 0:
			case k[0] == prefixData:
				h, err := decodeHeader(v)
				if err != nil {
					return fmt.Errorf("key %q: %w", k[1:], err)
				}
				entries = append(entries, logEntry{pos: h.local, at: h.time, key: string(k[1:])})
			case k[0] >= prefixOldIndex:
				old = append(old, bytes.Clone(k))
			}
			return nil
		})
		if err != nil || n < loadPage {
			return entries, old, err
		}
	}
}

// deleteKeys deletes keys from partition p, a page per change.
func (s *Store) deleteKeys(p int, keys [][]byte) error {
	for len(keys) > 0 {
		page := keys[:min(len(keys), loadPage)]
		keys = keys[len(page):]
		err := s.kv.Update(func(tx *kit.Tx) error {
			var errs []error
			for _, k := range page {
				errs = append(errs, tx.Delete(p, k))
			}
			return errors.Join(errs...)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
