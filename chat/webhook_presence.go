package chat

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Presence webhooks (user.online, user.offline) without a lost event.
//
// Presence is not stored: a login or a logout changes only memory, so its
// event has no commit of its own to ride. Two things make it durable
// anyway:
//
//   - The events queue here, in order, and one goroutine (runPresenceHooks)
//     writes each run of them in one batch through the journal, waiting for
//     room instead of dropping when the journal is full.
//   - Each user.online commits, in the same batch, a "wh.on" record (the
//     durable online set); its user.offline deletes it in its own batch. A
//     record still there when chatd starts is a user who was online when
//     the process died (kill -9, power loss): New writes their user.offline
//     ("reason": "restart") and deletes the records, in one batch. A
//     graceful stop (Drain) writes user.offline ("server_stopping") for
//     everyone still online before the journal closes.
//
// In a cluster (Config.Broker) the online set is shared, one record per
// user whatever node recorded it; its value names that node. The user's
// last device anywhere going away deletes it, on whichever node that is
// (a dead node's users: on the live node with the lowest id, broker.go).
// A stop writes offline only for the users with no device on another
// node, and a restarting node does its "restart" sweep only after it has
// heard the other nodes' connections (clusterDead), for the users with no
// device anywhere. A node's users when it dies are written offline by the
// live node with the lowest id (as they leave its online sets).
//
// So every user.online the host receives is followed by one user.offline.
// What can still go unseen is a login whose user.online had not committed
// when the process died: its connection died with it, and the host hears
// of neither (no record, no offline event either).
//
// Owner: presenceHooks.mu guards pending, on and stopped; flushMu is held
// by whoever turns pending into a batch and writes it (the flusher, or
// Drain), so two such batches never commit out of order.
const kindWebhookOnline = "wh.on" // app\x00uid → "" : user.online recorded, user.offline not yet

// Reasons in user.offline's data.
const (
	OfflineDisconnected  = "disconnected"    // the user's last connection closed
	OfflineServerStopped = "server_stopping" // chatd was stopped while they were online
	OfflineRestart       = "restart"         // chatd died while they were online; written when it started again
)

type presenceChange struct {
	app, uid string
	online   bool
	at       int64 // unix ms of the change
}

type presenceHooks struct {
	mu      sync.Mutex
	pending []presenceChange
	on      map[string]struct{} // userKey → an online recorded (or queued) and no offline since
	// recorded is len(on), for a lock-free check on the logout path.
	recorded atomic.Int64
	stopped  bool          // Drain wrote everyone offline: later changes are not events
	wake     chan struct{} // cap 1
	flushMu  sync.Mutex
}

var presenceBits = webhookBit(WebhookUserOnline) | webhookBit(WebhookUserOffline)

// presenceHook queues a presence event. It never blocks and never writes:
// it may run on an event loop.
func (c *Core) presenceHook(app, uid string, online bool) {
	wanted := c.wh.wanted(app)&presenceBits != 0
	h := &c.ph
	if !wanted && (online || h.recorded.Load() == 0) {
		return // the login path's cost for an app without presence webhooks
	}
	key := userKey(app, uid)
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		return
	}
	if online {
		if !wanted {
			h.mu.Unlock()
			return
		}
		if h.on == nil {
			h.on = make(map[string]struct{})
		}
		h.on[key] = struct{}{}
	} else {
		_, recorded := h.on[key]
		if !wanted && !recorded {
			h.mu.Unlock()
			return
		}
		delete(h.on, key)
	}
	h.recorded.Store(int64(len(h.on)))
	h.pending = append(h.pending, presenceChange{app: app, uid: uid, online: online, at: c.nowMS()})
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// runPresenceHooks writes the queued presence events until ctx is done.
func (c *Core) runPresenceHooks(ctx context.Context) {
	var sweep <-chan time.Time
	if c.cluster != nil {
		t := time.NewTimer(clusterDead)
		defer t.Stop()
		sweep = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.drainReq:
			return
		case <-c.ph.wake:
			c.flushPresence(ctx, false)
		case <-sweep:
			sweep = nil
			c.presenceSweepCluster(ctx)
		}
	}
}

// flushPresence writes the queued changes in one batch; with stop, it
// also writes user.offline for everyone still recorded online, and takes
// no more changes after.
func (c *Core) flushPresence(ctx context.Context, stop bool) {
	h := &c.ph
	h.flushMu.Lock()
	defer h.flushMu.Unlock()
	h.mu.Lock()
	changes := h.pending
	h.pending = nil
	var still []string
	if stop {
		h.stopped = true
		for k := range h.on {
			still = append(still, k)
		}
		h.on = nil
		h.recorded.Store(0)
	}
	h.mu.Unlock()
	// In a cluster, a user still online on another node keeps the record:
	// that node owes the offline.
	still = slices.DeleteFunc(still, func(k string) bool { return c.onOtherNode(splitUserKey(k)) })
	if len(changes) == 0 && len(still) == 0 {
		return
	}
	b := &Batch{}
	// A batch applies its puts before its deletes: each user's record
	// takes the state of their last change in the batch.
	final := make(map[string]bool, len(changes))
	for _, ch := range changes {
		final[userKey(ch.app, ch.uid)] = ch.online
		if ch.online {
			c.presenceEvent(b, ch.app, ch.uid, WebhookUserOnline, "", ch.at)
		} else {
			c.presenceEvent(b, ch.app, ch.uid, WebhookUserOffline, OfflineDisconnected, ch.at)
		}
	}
	for k, online := range final {
		if online {
			b.Records = append(b.Records, Record{Kind: kindWebhookOnline, Key: []byte(k), Value: c.nodeTag()})
		} else {
			b.DelRecords = append(b.DelRecords, RecordKey{Kind: kindWebhookOnline, Key: []byte(k)})
		}
	}
	now := c.nowMS()
	for _, k := range still {
		app, uid := splitUserKey(k)
		b.DelRecords = append(b.DelRecords, RecordKey{Kind: kindWebhookOnline, Key: []byte(k)})
		c.presenceEvent(b, app, uid, WebhookUserOffline, OfflineServerStopped, now)
	}
	if err := c.write(ctx, b); err != nil {
		// Refused at a stop or by a failing disk: the wh.on records that
		// did commit make the next start write the offline events.
		c.cfg.LogError("webhooks: writing "+itoa(uint64(len(changes)+len(still)))+" presence events", err)
	}
}

// presenceEvent adds typ's outbox record for uid to b when an endpoint of
// app wants it.
func (c *Core) presenceEvent(b *Batch, app, uid, typ, reason string, at int64) {
	if c.wh.wanted(app)&webhookBit(typ) != 0 {
		c.addEvent(b, app, WebhookEvent{Type: typ, Data: presenceData{UID: uid, Reason: reason}}, at)
	}
}

// presenceRestart runs in New, before anything is online: the users
// recorded online were online when the last process died. In a cluster
// the sweep waits for the other nodes' connections (presenceSweepCluster).
func (c *Core) presenceRestart(ctx context.Context) error {
	c.ph.wake = make(chan struct{}, 1)
	if c.cfg.Broker != nil {
		return nil
	}
	return c.presenceSweep(ctx, func(Record) bool { return true }, c.store.Apply)
}

// presenceSweepCluster is a cluster node's restart sweep, once it has
// heard the other nodes (clusterDead after its start): the records whose
// user has no device anywhere now, whichever node made them (the node
// that held a user's last device may be the one that died). Two nodes
// restarting in the same seconds may both write one user's offline.
func (c *Core) presenceSweepCluster(ctx context.Context) {
	err := c.presenceSweep(ctx, func(r Record) bool {
		app, uid := splitUserKey(string(r.Key))
		u := c.lookupUser(app, uid)
		return u == nil || len(u.online()) == 0
	}, c.write)
	if err != nil {
		c.cfg.LogError("webhooks: the restart sweep of the presence records", err)
	}
}

// presenceSweep writes user.offline ("restart") for the wh.on records
// that pick, and deletes them, with write.
func (c *Core) presenceSweep(ctx context.Context, pick func(Record) bool, write func(context.Context, *Batch) error) error {
	recs, err := c.store.ScanRecords(ctx, kindWebhookOnline, nil, nil, 0, false)
	if err != nil || len(recs) == 0 {
		return err
	}
	b := &Batch{}
	now := c.nowMS()
	for _, r := range recs {
		if !pick(r) {
			continue
		}
		app, uid := splitUserKey(string(r.Key))
		b.DelRecords = append(b.DelRecords, RecordKey{Kind: kindWebhookOnline, Key: r.Key})
		c.presenceEvent(b, app, uid, WebhookUserOffline, OfflineRestart, now)
	}
	if b.Empty() {
		return nil
	}
	return write(ctx, b)
}

// nodeTag is what a wh.on record says of the node that made it: its
// cluster node id, or nothing on a single node.
func (c *Core) nodeTag() []byte {
	if c.cluster == nil {
		return []byte{}
	}
	return []byte(c.cluster.node)
}

// onOtherNode reports whether (app, uid) has a device on another node.
func (c *Core) onOtherNode(app, uid string) bool {
	if c.cluster == nil {
		return false
	}
	u := c.lookupUser(app, uid)
	if u == nil {
		return false
	}
	for _, cl := range u.online() {
		if isMirror(cl) {
			return true
		}
	}
	return false
}

func splitUserKey(k string) (app, uid string) {
	for i := 0; i < len(k); i++ {
		if k[i] == 0 {
			return k[:i], k[i+1:]
		}
	}
	return k, ""
}
