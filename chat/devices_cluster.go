package chat

import "context"

// The device policy across the nodes of a cluster (docs/cluster.md).
//
// On one node a login closes the user's other devices under the app's
// policy (enforceDevices), one login of a user at a time (a lock). Two
// nodes cannot share that lock: two logins of one user on two nodes at
// the same moment would each close the other (nobody left), or neither
// see the other (both stay). So on a cluster every device has an order —
// when it logged in (unix ms, by its node's clock), then its node id,
// then its connection id — carried in its "up" (broker.go), and the rule
// is the same on every node: a device is replaced when a competing device
// of its user (any other one under `single`, one of the same platform
// under `one_per_platform`) is newer. Each node closes only its own
// devices, when it sees a newer competitor: at a login on it
// (enforceDevices) and when another node's login arrives (mirrorDevices).
// Every node applies the same order to the same devices, so exactly the
// newest stays, whatever order the nodes hear of them.

// devKey is a device's place in the order.
type devKey struct {
	at   int64
	node string
	conn uint64
}

func (a devKey) newer(b devKey) bool {
	if a.at != b.at {
		return a.at > b.at
	}
	if a.node != b.node {
		return a.node > b.node
	}
	return a.conn > b.conn
}

// keyOf is cl's place in the order; false for a local connection not
// announced (closed meanwhile).
func (k *cluster) keyOf(cl *Client) (devKey, bool) {
	if p, ok := cl.peer.(*mirrorPeer); ok {
		return devKey{p.at, p.node, p.conn}, true
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	id, ok := k.ids[cl]
	return devKey{k.at[id], k.node, id}, ok
}

// enforceDevicesCluster closes this node's devices of u that a newer
// competing device replaces under policy. Called with the user's device
// lock held (enforceDevices).
func (c *Core) enforceDevicesCluster(u *user, policy string) {
	k := c.cluster
	devs := u.online()
	keys := make([]devKey, len(devs))
	known := make([]bool, len(devs))
	for i, d := range devs {
		keys[i], known[i] = k.keyOf(d)
	}
	for i, o := range devs {
		if !known[i] || isMirror(o) || !o.loggedIn.Load() {
			continue
		}
		var by *Client
		var byKey devKey
		for j, d := range devs {
			if j == i || !known[j] || (policy == DevicesOnePerPlatform && d.platform != o.platform) {
				continue
			}
			if keys[j].newer(keys[i]) && (by == nil || keys[j].newer(byKey)) {
				by, byKey = d, keys[j]
			}
		}
		if by == nil {
			continue
		}
		o.reply(appendEvent(nil, "kicked", KickedEvent{Reason: "logged_in_elsewhere",
			Platform: platformNames[by.platform], Policy: policy}))
		c.logout(o, "logged in elsewhere")
		o.peer.Close(CloseReplaced, "logged in elsewhere")
	}
}

// mirrorDevices applies the app's device policy when another node's
// login of m's user arrives (m, its mirror) and the user has a device on
// this node. Called under the cluster's lock: the work (which may read
// the app's settings) runs on its own goroutine.
func (c *Core) mirrorDevices(m *Client) {
	if s := c.cachedSettings(m.id.App); s != nil && (s.Devices == "" || s.Devices == DevicesMulti) {
		return
	}
	local := false
	for _, d := range m.u.online() {
		if !isMirror(d) {
			local = true
			break
		}
	}
	if !local {
		return
	}
	go func() {
		s, err := c.appSettings(context.Background(), m.id.App)
		if err != nil {
			c.cfg.LogError("cluster: read device policy", err)
			return
		}
		if s.Devices == "" || s.Devices == DevicesMulti {
			return
		}
		l := c.lockFor("\x04" + userKey(m.id.App, m.id.UID))
		l.Lock()
		defer l.Unlock()
		c.enforceDevicesCluster(m.u, s.Devices)
	}()
}
