package server

import (
	"sync/atomic"
	"time"
)

// clock numbers the writes this node accepts as primary: a hybrid logical
// clock whose readings are the wall clock in milliseconds shifted left by
// 16 bits, bumped by one whenever that would not exceed the last reading.
// Readings strictly increase, stay close to real time (handy when reading
// versions), and never repeat across restarts: the clock starts above the
// greatest Seq in the store.
type clock struct {
	last atomic.Uint64
}

func newClock(floor uint64) *clock {
	c := &clock{}
	c.last.Store(floor)
	return c
}

// now returns a reading greater than every earlier one.
func (c *clock) now() uint64 {
	wall := uint64(time.Now().UnixMilli()) << 16
	for {
		last := c.last.Load()
		next := max(wall, last+1)
		if c.last.CompareAndSwap(last, next) {
			return next
		}
	}
}
