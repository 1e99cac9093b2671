package e2e_test

import (
	"sync/atomic"
	"time"
)

// fakeClock is the core's replaceable clock (teststack.Options.Now): it
// starts at the real time, truncated to the second, and moves only when
// the test advances it.
type fakeClock struct{ ns atomic.Int64 }

func newClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Now().Truncate(time.Second).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time           { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration)  { c.ns.Add(int64(d)) }
func (c *fakeClock) Add(d time.Duration)      { c.ns.Add(int64(d)) }
func (c *fakeClock) UnixMilli() int64         { return c.Now().UnixMilli() }
func (c *fakeClock) At(d time.Duration) int64 { return c.Now().Add(d).UnixMilli() }
