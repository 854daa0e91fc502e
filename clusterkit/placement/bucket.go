package placement

// bucketQueue orders items 0..n-1 by a non-negative integer key. Changing a
// key by one and reading the items of the largest key are O(1), which is
// what the fill needs: every placement lowers one key by one.
type bucketQueue struct {
	items []int32 // sorted by key, largest first
	pos   []int32 // pos[item] is the item's index in items
	key   []int
	// end[k] is the number of items whose key is at least k, so the items
	// with key k are items[end[k+1]:end[k]]. end has at least top+2 entries.
	end []int32
	top int // largest key held by some item, or 0
}

func newBucketQueue(keys []int) *bucketQueue {
	maxKey := 0
	for _, k := range keys {
		maxKey = max(maxKey, k)
	}
	q := &bucketQueue{
		items: make([]int32, len(keys)),
		pos:   make([]int32, len(keys)),
		key:   append([]int(nil), keys...),
		end:   make([]int32, maxKey+2),
		top:   maxKey,
	}
	for _, k := range keys {
		q.end[k]++
	}
	// Turn per-key counts into suffix sums: end[k] = #items with key >= k.
	for k := maxKey - 1; k >= 0; k-- {
		q.end[k] += q.end[k+1]
	}
	// Place each item at the front of its block, filling blocks in order.
	next := make([]int32, maxKey+1)
	for k := 0; k <= maxKey; k++ {
		next[k] = q.end[k+1]
	}
	for i, k := range keys {
		q.items[next[k]] = int32(i)
		q.pos[i] = next[k]
		next[k]++
	}
	return q
}

// block returns the items whose key is k. The slice aliases the queue and
// is valid only until the next key change.
func (q *bucketQueue) block(k int) []int32 {
	return q.items[q.end[k+1]:q.end[k]]
}

func (q *bucketQueue) swap(i, j int32) {
	a, b := q.items[i], q.items[j]
	q.items[i], q.items[j] = b, a
	q.pos[a], q.pos[b] = j, i
}

// dec lowers the key of item by one. The key must be positive.
func (q *bucketQueue) dec(item int) {
	k := q.key[item]
	last := q.end[k] - 1
	q.swap(q.pos[item], last)
	q.end[k]--
	q.key[item] = k - 1
	for q.top > 0 && q.end[q.top] == q.end[q.top+1] {
		q.top--
	}
}

// inc raises the key of item by one.
func (q *bucketQueue) inc(item int) {
	k := q.key[item]
	if k+2 >= len(q.end) {
		q.end = append(q.end, 0)
	}
	first := q.end[k+1]
	q.swap(q.pos[item], first)
	q.end[k+1]++
	q.key[item] = k + 1
	q.top = max(q.top, k+1)
}
