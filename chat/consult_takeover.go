package chat

import "context"

// consultTakeOver loads the consultations when this node becomes the
// domains' owner (owner.go). prev is the lease as read just before this
// node took it. Minimal version: the state is reset and loaded as at a
// start (the restart rule); the consultation helper's version replaces it.
func (c *Core) consultTakeOver(ctx context.Context, prev LeaseInfo) error {
	_ = prev
	c.consultDrop()
	st := &c.consult
	st.mu.Lock() // sessions' views may read the map meanwhile
	defer st.mu.Unlock()
	return c.loadConsults(ctx)
}
