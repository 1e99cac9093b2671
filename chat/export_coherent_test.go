package chat

import "time"

// ClusterStreamIdleForTest waits until the events this node queued for
// other nodes' subscribers have been handed to the broker.
func (c *Core) ClusterStreamIdleForTest() {
	for c.cluster.stream.pending.Load() > 0 {
		time.Sleep(time.Millisecond)
	}
}
