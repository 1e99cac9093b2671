package chat

import "context"

// ConsultTakeOverForTest is Core.consultTakeOver: the node becomes the
// owner of the consultations, prev being the lease it took over.
func (c *Core) ConsultTakeOverForTest(ctx context.Context, prev LeaseInfo) error {
	return c.consultTakeOver(ctx, prev)
}

// ConsultScheduledForTest is how many consultations have a timer entry.
func (c *Core) ConsultScheduledForTest() int { return c.consult.timers.len() }
