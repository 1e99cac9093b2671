package chat

// SetForwardChunkForTest sets how many bytes of data one forwarding
// message carries (forward.go), to test the pieces with small payloads.
func (c *Core) SetForwardChunkForTest(n int) {
	c.cluster.fwd.chunk.Store(int64(n))
}

// ForwardBusyForTest counts the forwarded requests this node answered
// busy.
func (c *Core) ForwardBusyForTest() int64 { return c.cluster.fwd.busy.Load() }

// ForwardWaitingForTest counts this node's forwarded requests waiting for
// their reply.
func (c *Core) ForwardWaitingForTest() int {
	c.cluster.fwd.mu.Lock()
	defer c.cluster.fwd.mu.Unlock()
	return len(c.cluster.fwd.waiting)
}
