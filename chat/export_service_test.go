package chat

import "context"

// ServiceTick runs one round of the service goroutine now: tests move the
// core's clock and then call it, instead of waiting for the ticker.
func (c *Core) ServiceTick() { c.svcTick(context.Background()) }
