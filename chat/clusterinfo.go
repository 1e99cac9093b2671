package chat

import (
	"context"
	"slices"
	"strings"
	"time"
)

// What a node of a cluster can say about the cluster, for `chatd status`
// and the metrics (docs/cluster.md, Seeing the cluster). Read-only: none
// of it runs on the send or login paths.

// ClusterPeer is another node of the cluster as this node hears it.
type ClusterPeer struct {
	ID string
	// LastHeard is when this node last had a message from it (on the
	// core's clock, Config.Now): a heartbeat comes every second, and a
	// node not heard for 3 s is presumed dead and leaves the list.
	LastHeard time.Time
	// Conns is how many of its connections this node mirrors.
	Conns int
}

// ClusterPeers returns the other nodes this node hears, by id; nil on a
// node without a broker.
func (c *Core) ClusterPeers() []ClusterPeer {
	k := c.cluster
	if k == nil {
		return nil
	}
	k.mu.RLock()
	out := make([]ClusterPeer, 0, len(k.nodes))
	for id, n := range k.nodes {
		out = append(out, ClusterPeer{ID: id, LastHeard: time.UnixMilli(n.seen), Conns: len(n.conns)})
	}
	k.mu.RUnlock()
	slices.SortFunc(out, func(a, b ClusterPeer) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// ClusterLeaseNames are the leases of a cluster's work that runs on one
// node at a time: the webhook dispatcher, and customer service and
// consultations ("domains").
var ClusterLeaseNames = []string{webhookLease, "domains"}

// ClusterLease is one lease as the shared store has it now.
type ClusterLease struct {
	Name string
	// Holder is "node/token" (token: per start of that node); empty
	// when nobody holds it.
	Holder string
	// Left is how long until it ends unless renewed (negative: expired).
	Left time.Duration
	// Here is whether this node holds it: the holder's node is this
	// node's id and the lease is live.
	Here bool
}

// HolderNode is the node part of the holder ("n1" of "n1/…").
func (l ClusterLease) HolderNode() string {
	node, _, _ := strings.Cut(l.Holder, "/")
	return node
}

// ClusterLeases reads ClusterLeaseNames' leases from the shared store, in
// that order; nil, nil on a store that is not shared. A lease nobody
// holds (never taken, released, or expired) has an empty Holder.
func (c *Core) ClusterLeases(ctx context.Context) ([]ClusterLease, error) {
	if c.shared == nil {
		return nil, nil
	}
	node := ""
	if c.cluster != nil {
		node = c.cluster.node
	}
	out := make([]ClusterLease, 0, len(ClusterLeaseNames))
	for _, name := range ClusterLeaseNames {
		li, err := c.shared.Lease(ctx, name)
		if err != nil {
			return nil, err
		}
		l := ClusterLease{Name: name, Left: li.Left}
		if li.Live() {
			l.Holder = li.Holder
		}
		l.Here = l.Holder != "" && node != "" && l.HolderNode() == node
		out = append(out, l)
	}
	return out, nil
}
