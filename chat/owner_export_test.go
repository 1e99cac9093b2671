package chat

import (
	"context"
	"time"
)

// SetDomainsLeaseForTest sets the domains lease's length and renewal
// period (owner.go); restore puts the defaults back.
func SetDomainsLeaseForTest(ttl, renew time.Duration) (restore func()) {
	oldTTL, oldRenew := domainsLeaseTTL, domainsLeaseRenew
	domainsLeaseTTL, domainsLeaseRenew = ttl, renew
	return func() { domainsLeaseTTL, domainsLeaseRenew = oldTTL, oldRenew }
}

// DomainsOwnerForTest reports whether this node serves the domains, and
// the owner it would forward to ("" when none).
func (c *Core) DomainsOwnerForTest() (serving bool, owner string) {
	if c.owner == nil {
		return true, ""
	}
	return c.owner.serving.Load(), c.owner.current()
}

// FencedWriteForTest commits b as the domains' owner's writes are: naming
// the domains lease and this node as its holder.
func (c *Core) FencedWriteForTest(ctx context.Context, b *Batch) error {
	return c.write(ctx, c.fenced(b))
}
