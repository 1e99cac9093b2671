package chat

import (
	"context"
	"time"
)

// Hooks for the external tests (package chat_test) of unexported core
// machinery. Only test binaries have them.

// WriteForTest commits b through the journal (Core.write).
func (c *Core) WriteForTest(ctx context.Context, b *Batch) error { return c.write(ctx, b) }

// SendWithForTest is Core.sendWith: a send whose attach adds records to
// the message's commit.
func (c *Core) SendWithForTest(ctx context.Context, app string, in SendInput, attach func(m *Message, b *Batch)) (SendResult, error) {
	return c.sendWith(ctx, app, in, attach)
}

// SetWebhookOutboxMaxForTest sets the outbox bound that RunWebhooks
// would set, without a dispatcher draining the outbox.
func (c *Core) SetWebhookOutboxMaxForTest(n int) { c.wh.max.Store(int64(n)) }

// ClusterTickForTest runs one heartbeat of the cluster (broker.go): the
// beat, and the drop of nodes not heard for 3 beats by the core's clock.
func (c *Core) ClusterTickForTest() { c.cluster.tick() }

// ClusterSettleForTest waits for the session reloads that invalidations
// started.
func (c *Core) ClusterSettleForTest() { c.cluster.refreshing.Wait() }

// OnlineDevicesForTest counts the user's devices this node knows: its own
// connections and the mirrors of other nodes' ones.
func (c *Core) OnlineDevicesForTest(app, uid string) (local, mirrors int) {
	for _, cl := range c.userRef(app, uid).online() {
		if isMirror(cl) {
			mirrors++
		} else {
			local++
		}
	}
	return local, mirrors
}

// SetWebhookLeaseForTest sets the webhook dispatcher's lease length and
// renewal period (whlease.go) and returns a func restoring them. Set it
// before any RunWebhooks starts.
func SetWebhookLeaseForTest(ttl, renew time.Duration) (restore func()) {
	oldTTL, oldRenew := webhookLeaseTTL, webhookLeaseRenew
	webhookLeaseTTL, webhookLeaseRenew = ttl, renew
	return func() { webhookLeaseTTL, webhookLeaseRenew = oldTTL, oldRenew }
}

// SetWebhookLastIDForTest moves the node's webhook event ids on: its next
// events get ids above id (ids are the node's wall clock otherwise).
func (c *Core) SetWebhookLastIDForTest(id int64) { c.wh.lastID.Store(id) }

// NextEventIDForTest hands out a webhook event id (whtag.go).
func (c *Core) NextEventIDForTest() int64 { return c.wh.nextID() }
