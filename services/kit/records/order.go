package records

import "fmt"

// CheckOrder returns an error unless ordered, distinct versions from the
// oldest to the newest, is ordered as records needs: by Less, and by Pair
// in the same way. A service's tests call it on its Version.
func CheckOrder[V Version[V]](ordered []V) error {
	for i, a := range ordered {
		ahi, alo := a.Pair()
		for j, b := range ordered {
			bhi, blo := b.Pair()
			pairLess := ahi < bhi || ahi == bhi && alo < blo
			if a.Less(b) != (i < j) || pairLess != (i < j) {
				return fmt.Errorf("records: versions %v (#%d) and %v (#%d): Less %v, pairs ordered %v, want %v", a, i, b, j, a.Less(b), pairLess, i < j)
			}
		}
	}
	return nil
}
