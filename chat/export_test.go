package chat

import "context"

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
