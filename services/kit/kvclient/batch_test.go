package kvclient

import (
	"slices"
	"testing"
)

func TestTakeBatch(t *testing.T) {
	size := func(n int) int { return n }
	for _, tc := range []struct {
		queue        []int
		maxOps, max  int
		batch, after []int
	}{
		{nil, 4, 10, nil, nil},
		{[]int{3, 3, 3, 3, 3}, 4, 100, []int{3, 3, 3, 3}, []int{3}}, // maxOps
		{[]int{4, 4, 4}, 10, 8, []int{4, 4}, []int{4}},              // maxBytes reached exactly
		{[]int{4, 5, 1}, 10, 8, []int{4}, []int{5, 1}},              // the next would pass it
		{[]int{20, 1}, 10, 8, []int{20}, []int{1}},                  // a large first item alone
		{[]int{1, 2}, 10, 8, []int{1, 2}, []int{}},                  // all of it
	} {
		q := slices.Clone(tc.queue)
		full := q
		batch := TakeBatch(&q, tc.maxOps, tc.max, size)
		if !slices.Equal(batch, tc.batch) || !slices.Equal(q, tc.after) {
			t.Errorf("TakeBatch(%v, %d, %d) = %v, leaving %v; want %v, leaving %v", tc.queue, tc.maxOps, tc.max, batch, q, tc.batch, tc.after)
		}
		for i := len(q); i < len(full); i++ {
			if full[i] != 0 {
				t.Errorf("TakeBatch(%v): freed slot %d holds %d", tc.queue, i, full[i])
			}
		}
	}
}
