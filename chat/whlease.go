package chat

import (
	"context"
	"errors"
	"time"
)

// On a shared store (a cluster, docs/cluster.md) the webhook outbox is
// one for all nodes, and so is its dispatcher: a node runs it only while
// it holds the store's lease "webhooks" (SharedStore.TryLease). It renews
// the lease every webhookLeaseRenew; when a renewal fails or is refused it
// stops the dispatcher at once and goes back to asking. A node that stops
// or crashes without releasing is replaced once the lease's ttl passes;
// the dispatcher that takes over loads the pending deliveries and the
// outbox from the store, as after a restart. Nodes without the lease keep
// the before-send hooks (they call through the Sender on every node) and
// answer a redelivery with an unavailable error (RedeliverWebhooks).

// webhookLease names the dispatcher's lease.
const webhookLease = "webhooks"

// The lease's length and renewal period; variables for the tests.
var (
	webhookLeaseTTL   = 5 * time.Second
	webhookLeaseRenew = time.Second
)

// errLeaseLost is logged when a renewal is refused.
var errLeaseLost = errors.New("refused: the lease passed to another node; this node's dispatcher stopped")

// runWebhooksLeased is RunWebhooks on a shared store.
func (c *Core) runWebhooksLeased(ctx context.Context, cfg WebhookConfig) error {
	holder := newToken()
	if c.cfg.Broker != nil {
		holder = c.cfg.Broker.Node() + "/" + holder
	}
	c.wh.setSender(&cfg.Sender) // the before-send hooks run on every node
	c.wh.standby.Store(true)
	defer c.wh.standby.Store(false)
	t := time.NewTicker(webhookLeaseRenew)
	defer t.Stop()
	for {
		if c.tryWebhookLease(ctx, holder) {
			c.holdWebhookLease(ctx, cfg, holder, t.C)
			if ctx.Err() != nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// tryWebhookLease takes or renews the lease; an error counts as refused.
// A renewal that hangs is cut at the renewal period, well before the
// lease can have passed to another node.
func (c *Core) tryWebhookLease(ctx context.Context, holder string) bool {
	tctx, cancel := context.WithTimeout(ctx, webhookLeaseRenew)
	defer cancel()
	ok, err := c.shared.TryLease(tctx, webhookLease, holder, webhookLeaseTTL)
	if err != nil && ctx.Err() == nil {
		c.cfg.LogError("webhooks: the dispatcher's lease", err)
	}
	return ok && err == nil
}

// holdWebhookLease runs the dispatcher while the lease is renewed at each
// tick. It returns when a renewal fails or is refused (the dispatcher is
// stopped at once), when ctx ends, or when the dispatcher fails (logged:
// its load, a store read; the lease is then released and asked for again
// at the next tick, by whichever node).
func (c *Core) holdWebhookLease(ctx context.Context, cfg WebhookConfig, holder string, tick <-chan time.Time) {
	dctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	c.wh.standby.Store(false)
	go func() { done <- c.runDispatcher(dctx, cfg) }()
	var err error
	finished := false // the dispatcher returned (err is its answer)
	for lost := false; !lost; {
		select {
		case err = <-done:
			lost, finished = true, true
		case <-ctx.Done():
			lost = true
		case <-tick:
			if !c.tryWebhookLease(ctx, holder) {
				if ctx.Err() == nil {
					c.cfg.LogError("webhooks: renewing the dispatcher's lease", errLeaseLost)
				}
				lost = true
			}
		}
	}
	stop()
	if !finished {
		err = <-done
	}
	if err != nil {
		c.cfg.LogError("webhooks: the dispatcher", err)
	}
	// Another node decides the outbox's bound while this one waits.
	c.wh.max.Store(0)
	c.wh.standby.Store(true)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), webhookLeaseRenew)
	defer cancel()
	if rerr := c.shared.ReleaseLease(rctx, webhookLease, holder); rerr != nil {
		c.cfg.LogError("webhooks: releasing the dispatcher's lease", rerr)
	}
}
