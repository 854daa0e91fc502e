package kvclient

// TakeBatch removes the next batch from the front of *queue and returns
// it, in queue order: at most maxOps items whose sizes (size) add up to at
// most maxBytes, but always the first item, however large, so that a
// write larger than maxBytes travels alone. The freed slots of *queue are
// cleared, so that it holds no reference to a taken item. It returns nil
// for an empty queue.
func TakeBatch[T any](queue *[]T, maxOps, maxBytes int, size func(T) int) []T {
	q := *queue
	n, total := 0, 0
	for n < len(q) && n < maxOps {
		s := size(q[n])
		if n > 0 && total+s > maxBytes {
			break
		}
		total += s
		n++
	}
	if n == 0 {
		return nil
	}
	batch := make([]T, n)
	copy(batch, q)
	rest := copy(q, q[n:])
	clear(q[rest:])
	*queue = q[:rest]
	return batch
}
