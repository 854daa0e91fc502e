package records

import (
	"fmt"
	"strconv"
)

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

// ComparePairs returns -1, 0 or +1 as the pair (ahi, alo) orders before,
// equal to or after (bhi, blo): by hi, then by lo. A service's Version
// orders its numbers this way, as records needs (see Version.Pair).
func ComparePairs(ahi, alo, bhi, blo uint64) int {
	switch {
	case ahi < bhi, ahi == bhi && alo < blo:
		return -1
	case ahi > bhi, alo > blo:
		return 1
	}
	return 0
}

// FormatPair formats a version's two numbers as "hi.lo".
func FormatPair(hi, lo uint64) string {
	return strconv.FormatUint(hi, 10) + "." + strconv.FormatUint(lo, 10)
}
