package chat

import (
	"context"
	"errors"
	"strconv"
	"time"
)

// Webhook event ids on a shared store. An event's id is its key in the
// outbox (8 bytes, sorted by creation); on one node it is the wall clock
// in ns, strictly increasing. Several nodes writing one outbox would
// collide whenever two of them create an event in the same nanosecond —
// about 0.1 times a second at 10,000 events/s on each of two nodes — and
// the later write would replace the earlier event. So a node of a shared
// store first takes one of eventTagSlots tags, a lease "wh.tag/<n>"
// (SharedStore.TryLease, held for eventTagTTL and renewed every
// eventTagRenew by Run), and its ids are the wall clock in µs shifted
// left by eventTagBits, with the tag in the low bits: unique across the
// nodes holding distinct tags, still sorted by creation (to the µs), and
// above every ns id of a single node that ran before (µs·1024 > ns·1).

const (
	eventTagBits  = 10
	eventTagSlots = 1 << eventTagBits
)

// The tag lease's length and renewal period: long, because a node that
// cannot renew it cannot write events either (they go to the same store).
var (
	eventTagTTL   = time.Hour
	eventTagRenew = time.Minute
)

var errNoEventTag = errors.New("every webhook event tag (" + strconv.Itoa(eventTagSlots) +
	") is held by another node: too many nodes on one database")

// claimEventTag takes the first free tag lease; called by New on a shared
// store before anything can write an event.
func (c *Core) claimEventTag(ctx context.Context) error {
	w := c.wh
	w.tagHolder = newToken()
	if c.cfg.Broker != nil {
		w.tagHolder = c.cfg.Broker.Node() + "/" + w.tagHolder
	}
	for n := 0; n < eventTagSlots; n++ {
		ok, err := c.shared.TryLease(ctx, eventTagLease(n), w.tagHolder, eventTagTTL)
		if err != nil {
			return err
		}
		if ok {
			w.tag = int64(n)
			return nil
		}
	}
	return errNoEventTag
}

func eventTagLease(n int) string { return "wh.tag/" + strconv.Itoa(n) }

// runEventTag renews the tag lease until ctx ends, then releases it. A
// refused renewal (the lease expired and another node took the tag: this
// node could not reach the store for eventTagTTL) is logged loudly: ids
// may collide with that node's until this one restarts.
func (c *Core) runEventTag(ctx context.Context) {
	w := c.wh
	name := eventTagLease(int(w.tag))
	t := time.NewTicker(eventTagRenew)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := c.shared.ReleaseLease(rctx, name, w.tagHolder); err != nil {
				c.cfg.LogError("webhooks: releasing the event id tag "+name, err)
			}
			cancel()
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, eventTagRenew)
		ok, err := c.shared.TryLease(rctx, name, w.tagHolder, eventTagTTL)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			c.cfg.LogError("webhooks: renewing the event id tag "+name, err)
		case err == nil && !ok:
			c.cfg.LogError("webhooks: renewing the event id tag "+name,
				errors.New("refused: another node took it after it expired; restart this node so that its event ids cannot collide"))
		}
	}
}
