package chat

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"sync/atomic"
)

// Caches kept coherent across the nodes of a cluster (docs/cluster.md,
// "Invalidation").
//
// Each node caches what the send and login paths read: app settings,
// bans and mutes, contacts, webhook endpoints and before-send hooks,
// broadcast channels and audiences, who hides presence. They are all
// records (or restrictions) in the shared store, so one mechanism keeps
// them: when a commit is durable (finishCommit → invalidate), the batch's
// record kinds are looked up in coherentCaches, and the node publishes one
// "c" message listing (cache, key) pairs; every other node hands them to a
// goroutine of its own (never the broker's: a reload may read the store
// and wait for an outer lock) that drops its copies, or reloads the few
// caches that are not loaded lazily (bans and mutes, webhook endpoints,
// before-send hooks are loaded whole at New).
//
// A lazy loader reads the store and then caches what it read; an
// invalidation between the two would be undone by the insert, leaving
// the old value for good. So each cache has a generation, moved by every
// invalidation before it drops: a loader reads it before the store and
// keeps what it read only if it did not move (cacheGen, cacheStale).
//
// The window: between a commit on one node and the drop on another
// (a NATS hop and a goroutine), the other node acts on its old copy. NATS
// is at most once: an invalidation lost is a copy kept until the next
// change of the same key or a restart (the same as the sessions' rosters).

// Cache kinds, the first byte of each pair of a "c" message.
const (
	cacheSettings   = iota // app settings (messaging, devices, has_blocks): app
	cacheModeration        // bans and mutes: app\x00uid (the whole table is reloaded)
	cacheContacts          // one user's contacts side: app\x00uid
	cacheEndpoints         // webhook endpoints: app
	cacheHook              // the before-send hook: app
	cacheBcastChan         // the broadcast channel: app
	cacheBcastAud          // a broadcast's audience: channel, seq (16 bytes)
	cacheHidden            // the users hiding presence: app
	numCaches
)

// coherentCache says which records a cache holds and how another node's
// change of them reaches it.
type coherentCache struct {
	name    string
	records []string // record kinds whose puts and deletes change it
	// key is the cache's key for a record key (nil: the record key).
	key func(recKey []byte) []byte
	// drop forgets (or reloads) the node's copies of keys, which other
	// nodes changed. It runs on a goroutine of its own with no lock held
	// and may read the store.
	drop func(c *Core, keys []string)
}

// upToNul is the key up to its first NUL (app\x00… → app).
func upToNul(k []byte) []byte {
	if i := bytes.IndexByte(k, 0); i >= 0 {
		return k[:i]
	}
	return k
}

// upToSecondNul is app\x00uid of app\x00uid\x00peer.
func upToSecondNul(k []byte) []byte {
	if i := bytes.IndexByte(k, 0); i >= 0 {
		if j := bytes.IndexByte(k[i+1:], 0); j >= 0 {
			return k[:i+1+j]
		}
	}
	return k
}

var coherentCaches = [numCaches]coherentCache{
	cacheSettings: {name: "app settings", records: []string{kindSettings},
		drop: func(c *Core, keys []string) {
			for _, app := range keys {
				c.contacts.apps.Delete(app)
			}
		}},
	cacheModeration: {name: "bans and mutes",
		drop: func(c *Core, _ []string) { c.reloadModerationCoalesced() }},
	cacheContacts: {name: "contacts", records: []string{kindFriend, kindReqIn, kindReqOut, kindBlock}, key: upToSecondNul,
		drop: func(c *Core, keys []string) {
			b := &c.contacts
			b.mu.Lock()
			for _, k := range keys {
				delete(b.states, k)
			}
			b.mu.Unlock()
		}},
	cacheEndpoints: {name: "webhook endpoints", records: []string{kindWebhookEndpoint}, key: upToNul,
		drop: func(c *Core, apps []string) {
			for _, app := range apps {
				c.reloadEndpoints(app)
			}
		}},
	cacheHook: {name: "before-send hook", records: []string{kindBeforeSendHook},
		drop: func(c *Core, apps []string) {
			for _, app := range apps {
				c.reloadHook(app)
			}
		}},
	cacheBcastChan: {name: "broadcast channel", records: []string{KindBroadcastChannel},
		drop: func(c *Core, apps []string) {
			c.bcast.mu.Lock()
			for _, app := range apps {
				delete(c.bcast.chans, app)
			}
			c.bcast.mu.Unlock()
		}},
	cacheBcastAud: {name: "broadcast audience", records: []string{KindBroadcastAudience},
		drop: func(c *Core, keys []string) {
			c.bcast.mu.Lock()
			for _, k := range keys {
				if len(k) == 16 {
					delete(c.bcast.aud, audKey{SessionID(binary.BigEndian.Uint64([]byte(k))), binary.BigEndian.Uint64([]byte(k[8:]))})
				}
			}
			c.bcast.mu.Unlock()
		}},
	cacheHidden: {name: "presence hiding", records: []string{kindHidden}, key: upToNul,
		drop: func(c *Core, apps []string) {
			p := &c.presence
			p.mu.Lock()
			for _, app := range apps {
				delete(p.hidden, app)
			}
			p.mu.Unlock()
		}},
}

// cacheGens are the caches' generations, moved by each invalidation.
type cacheGens [numCaches]atomic.Uint64

// cacheOfRecord maps a record kind to the cache holding it.
var cacheOfRecord = func() map[string]byte {
	m := map[string]byte{}
	for i, cc := range coherentCaches {
		for _, kind := range cc.records {
			m[kind] = byte(i)
		}
	}
	return m
}()

// cacheGen is the generation of a cache (0 on a single node): a loader
// reads it before reading the store, and keeps what it read only if
// cacheStale then says no.
func (c *Core) cacheGen(kind int) uint64 {
	if c.cluster == nil {
		return 0
	}
	return c.cluster.gens[kind].Load()
}

// cacheStale reports whether an invalidation of kind came since gen was
// read: what was read from the store then may be older than it.
func (c *Core) cacheStale(kind int, gen uint64) bool {
	return c.cluster != nil && c.cluster.gens[kind].Load() != gen
}

// invalidateCaches tells the other nodes which cached records a durable
// batch changed. Called by invalidate (finishCommit).
func (k *cluster) invalidateCaches(b *Batch) {
	var m []byte
	n := 0
	add := func(kind byte, key []byte) {
		if m == nil {
			m = appendStr([]byte{bkCache}, k.node)
		}
		m = appendStr(append(m, kind), string(key))
		n++
	}
	rec := func(kind string, key []byte) {
		if ck, ok := cacheOfRecord[kind]; ok {
			if f := coherentCaches[ck].key; f != nil {
				key = f(key)
			}
			add(ck, key)
		}
	}
	for i := range b.Records {
		rec(b.Records[i].Kind, b.Records[i].Key)
	}
	for i := range b.DelRecords {
		rec(b.DelRecords[i].Kind, b.DelRecords[i].Key)
	}
	for i := range b.Restrictions {
		add(cacheModeration, []byte(userKey(b.Restrictions[i].App, b.Restrictions[i].UID)))
	}
	for i := range b.DelRestrictions {
		add(cacheModeration, []byte(userKey(b.DelRestrictions[i].App, b.DelRestrictions[i].UID)))
	}
	if n == 0 {
		return
	}
	// The count goes between the head and the pairs.
	head := len(appendStr([]byte{bkCache}, k.node))
	out := binary.AppendUvarint(slices.Clone(m[:head]), uint64(n))
	k.publish("", append(out, m[head:]...))
}

// cacheInvalidated takes another node's "c": the generations move now,
// on the broker's goroutine, and the copies are dropped on another.
func (k *cluster) cacheInvalidated(r *brokerMsg) error {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b)) {
		return errBadBrokerMsg
	}
	var keys [numCaches][]string
	for range n {
		kind := r.byte1()
		key := r.str()
		if r.bad || int(kind) >= numCaches {
			return errBadBrokerMsg
		}
		if !slices.Contains(keys[kind], key) {
			keys[kind] = append(keys[kind], key)
		}
	}
	for kind := range keys {
		if len(keys[kind]) > 0 {
			k.gens[kind].Add(1)
		}
	}
	k.refreshing.Add(1)
	go func() {
		defer k.refreshing.Done()
		for kind, ks := range keys {
			if len(ks) > 0 {
				coherentCaches[kind].drop(k.c, ks)
			}
		}
	}()
	return nil
}

// reloadEagerCaches rereads the caches New loads eagerly — bans and
// mutes, every app's webhook endpoints and before-send hook — once the
// node has subscribed to the broker: an invalidation published between
// their load and the subscription was lost (a ban made on another node
// while this one started would never apply here). The lazy caches load
// after the subscription, under their generation check.
func (c *Core) reloadEagerCaches(ctx context.Context) error {
	c.reloadModeration()
	apps, err := c.store.Apps(ctx)
	if err != nil {
		return err
	}
	for _, a := range apps {
		c.reloadEndpoints(a.ID)
		c.reloadHook(a.ID)
	}
	return nil
}

// reloadModerationCoalesced is reloadModeration for invalidations: a
// burst of them (a host banning thousands of users through another
// node) runs one reload at a time and at most one more after it, each
// reading the table once, instead of one full reread per ban. A caller
// that finds a reload running leaves it a note and returns; the running
// one reloads again before it stops, so the last change is always read.
func (c *Core) reloadModerationCoalesced() {
	m := &c.mod
	m.reloadAgain.Store(true)
	if !m.reloading.CompareAndSwap(false, true) {
		return
	}
	for {
		for m.reloadAgain.Swap(false) {
			c.reloadModeration()
		}
		m.reloading.Store(false)
		// A note left after the last Swap and before the Store found the
		// reload running and returned: take it.
		if !m.reloadAgain.Load() || !m.reloading.CompareAndSwap(false, true) {
			return
		}
	}
}

// reloadModeration rereads the bans and mutes: another node changed them.
func (c *Core) reloadModeration() {
	c.mod.mu.Lock()
	defer c.mod.mu.Unlock()
	rs, err := c.store.Restrictions(context.Background())
	if err != nil {
		c.cfg.LogError("cluster: reload bans and mutes changed on another node", err)
		return
	}
	c.mod.tab.Store(newModTable(rs))
}

// reloadEndpoints rereads app's webhook endpoints: another node changed
// them. Under writeMu, like a local change.
func (c *Core) reloadEndpoints(app string) {
	w := c.wh
	w.writeMu.Lock()
	defer w.writeMu.Unlock()
	recs, err := c.store.ScanRecords(context.Background(), kindWebhookEndpoint, []byte(app+"\x00"), nil, 0, false)
	if err != nil {
		c.cfg.LogError("cluster: reload the webhook endpoints of "+strconv.Quote(app)+" changed on another node", err)
		return
	}
	eps := make([]*WebhookEndpoint, 0, len(recs))
	for _, r := range recs {
		var e WebhookEndpoint
		if err := json.Unmarshal(r.Value, &e); err != nil {
			c.cfg.LogError("cluster: webhook endpoint "+strconv.Quote(string(r.Key)), err)
			continue
		}
		eps = append(eps, &e)
	}
	w.mu.Lock()
	if len(eps) == 0 {
		delete(w.endpoints, app)
	} else {
		w.endpoints[app] = eps
	}
	w.republish()
	w.mu.Unlock()
}

// reloadHook rereads app's before-send hook: another node changed it.
func (c *Core) reloadHook(app string) {
	w := c.wh
	w.writeMu.Lock()
	defer w.writeMu.Unlock()
	v, err := c.store.Record(context.Background(), kindBeforeSendHook, []byte(app))
	var h BeforeSendHook
	if err == nil {
		err = json.Unmarshal(v, &h)
	}
	switch {
	case err == nil:
		w.setHook(&h)
	case errors.Is(err, ErrNotFound):
		w.dropHook(app)
	default:
		c.cfg.LogError("cluster: reload the before-send hook of "+strconv.Quote(app)+" changed on another node", err)
	}
}

// dropHook publishes a hook table without app's. Called with writeMu held.
func (w *webhooks) dropHook(app string) {
	p := w.hooks.Load()
	if p == nil || (*p)[app] == nil {
		return
	}
	m := map[string]*BeforeSendHook{}
	for k, v := range *p {
		if k != app {
			m[k] = v
		}
	}
	w.hooks.Store(&m)
}
