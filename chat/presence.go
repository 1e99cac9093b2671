package chat

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"time"
)

// Presence: whether a user is online (any device logged in), since when
// they are offline (last seen), and on which platforms. Friends and
// private-session peers who are online hear changes as `presence` events.
//
// Changes are debounced with one structure for all users: the first change
// of a user's online state since its last announcement files the user in
// presenceBook.pending with the time and the state announced before it;
// the sweeper (runSweeper, on the core's clock Config.Now) takes the
// entries older than Config.PresenceDebounce and announces the users whose
// state differs from what was last announced. A connection that drops and
// comes back within the debounce is never announced. No timer per user,
// no store write on the login path: a last-seen time is kept in memory
// from the moment the user leaves until the next sweep past the debounce
// writes it, with every other one due, in one records batch; from then on
// the store answers for it.

// TopicPresence is the live-stream topic of presence announcements.
const TopicPresence = "presence"

// Record kinds of presence.
const (
	kindSeen   = "pres.seen" // app\x00uid → last seen, unix ms, 8 bytes big-endian
	kindHidden = "pres.hide" // app\x00uid → empty: the user hides their presence
)

// maxPresenceQuery caps the uids of one presence query.
const maxPresenceQuery = 200

var presenceActions = []string{"presence", "hide_presence", "show_presence", "typing"}

func init() {
	Actions = append(Actions, presenceActions...)
	Topics = append(Topics, TopicPresence)
}

type presencePending struct {
	app       string
	since     int64 // unix ms of the first change since the last announcement
	announced bool  // the online state announced before it
}

// presenceBook is the presence state of the whole core.
type presenceBook struct {
	mu      sync.Mutex // leaf: guards every field below
	pending map[*user]presencePending
	seen    map[*user]int64  // last seen, from leaving until written (then the store has it)
	dirty   map[*user]string // last seen not yet written → app
	// heard: users whose last device left on another node of a cluster
	// (seen set here from its down, written by that node): dropped from
	// seen after heardKeep, when the store has it (seenElsewhere).
	heard  map[*user]int64
	hidden map[string]map[string]bool // app → uids hiding presence (loaded per app)
	typing map[typingKey]int64        // typing.go
}

// presenceChanged notes a user's first device in (online) or last device
// out. Called on the login and close paths: one map write under a leaf
// lock, nothing else.
func (c *Core) presenceChanged(app string, u *user, online bool) {
	if c.cfg.PresenceDebounce < 0 {
		return
	}
	p := &c.presence
	now := c.nowMS()
	p.mu.Lock()
	if p.pending == nil {
		p.pending = map[*user]presencePending{}
		p.seen = map[*user]int64{}
		p.dirty = map[*user]string{}
	}
	if _, ok := p.pending[u]; !ok {
		p.pending[u] = presencePending{app: app, since: now, announced: !online}
	}
	if !online {
		p.seen[u] = now
		p.dirty[u] = app
	}
	p.mu.Unlock()
}

// heardKeep is how long a last-seen time heard from another node is kept
// in memory: that node writes it at its next sweep, well before.
const heardKeep = time.Minute

// seenElsewhere notes that u's last device left on another node of the
// cluster (its down reached this node): a presence query here answers
// that time at once instead of the store's older one until that node
// writes it. Nothing is written here.
func (c *Core) seenElsewhere(u *user) {
	if c.cfg.PresenceDebounce < 0 {
		return
	}
	p := &c.presence
	now := c.nowMS()
	p.mu.Lock()
	if p.seen == nil {
		p.pending = map[*user]presencePending{}
		p.seen = map[*user]int64{}
		p.dirty = map[*user]string{}
	}
	if p.heard == nil {
		p.heard = map[*user]int64{}
	}
	if _, mine := p.dirty[u]; !mine && p.seen[u] < now {
		p.seen[u] = now
		p.heard[u] = now
	}
	p.mu.Unlock()
}

// sweepPresence announces the changes that are older than the debounce and
// writes the last-seen times of users who went offline. Called by the
// sweeper: it may read and write the store.
func (c *Core) sweepPresence(ctx context.Context) {
	if c.cfg.PresenceDebounce < 0 {
		return
	}
	p := &c.presence
	due := c.nowMS() - c.cfg.PresenceDebounce.Milliseconds()
	type item struct {
		u *user
		presencePending
	}
	var ready []item
	var recs []Record
	type written struct {
		u   *user
		app string
		at  int64
	}
	var wrote []written
	p.mu.Lock()
	for u, e := range p.pending {
		if e.since <= due {
			ready = append(ready, item{u, e})
			delete(p.pending, u)
		}
	}
	for u, at := range p.heard {
		if _, mine := p.dirty[u]; mine || at+heardKeep.Milliseconds() <= c.nowMS() {
			delete(p.heard, u)
			if !mine && p.seen[u] == at {
				delete(p.seen, u)
			}
		}
	}
	for u, app := range p.dirty {
		if len(u.online()) > 0 {
			delete(p.dirty, u) // back online: nothing to write
			continue
		}
		if e, ok := p.pending[u]; ok && e.since > due {
			continue // still settling
		}
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], uint64(p.seen[u]))
		recs = append(recs, Record{Kind: kindSeen, Key: []byte(app + "\x00" + u.uid), Value: v[:]})
		wrote = append(wrote, written{u, app, p.seen[u]})
		delete(p.dirty, u)
	}
	p.mu.Unlock()
	for _, it := range ready {
		online := len(it.u.online()) > 0
		if online != it.announced {
			c.announce(ctx, it.app, it.u, online)
		}
	}
	if len(recs) == 0 || c.closing.Load() {
		return // stopping: the journal takes no more writes
	}
	if err := c.writeRecords(ctx, recs, nil); err != nil {
		c.cfg.LogError("presence: write last seen", err)
		p.mu.Lock()
		for _, w := range wrote {
			if _, again := p.dirty[w.u]; !again {
				p.dirty[w.u] = w.app // retried at the next sweep
			}
		}
		p.mu.Unlock()
		return
	}
	// Written: the store answers for them from now on, so memory holds
	// last-seen times only between a user leaving and the next sweep.
	p.mu.Lock()
	for _, w := range wrote {
		if _, again := p.dirty[w.u]; !again && p.seen[w.u] == w.at {
			delete(p.seen, w.u)
		}
	}
	p.mu.Unlock()
}

// PresenceView is one user's presence as another user may see it.
type PresenceView struct {
	UID       string   `json:"uid"`
	Online    bool     `json:"online"`
	Platforms []string `json:"platforms,omitempty"` // online only
	LastSeen  int64    `json:"last_seen,omitempty"` // offline only, unix ms; absent when unknown
}

// platformsOf lists the platforms of a user's online devices, once each.
func platformsOf(u *user) []string {
	var set uint8
	var out []string
	for _, cl := range u.online() {
		if bit := uint8(1) << cl.platform; set&bit == 0 {
			set |= bit
			out = append(out, platformNames[cl.platform])
		}
	}
	return out
}

// lookupUser returns the registry's handle on (app, uid), or nil when the
// process has not seen the user (without creating one).
func (c *Core) lookupUser(app, uid string) *user {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.users[app]
	if a == nil {
		return nil
	}
	return a.users.get(uid)
}

// announce pushes a user's presence, encoded once, to every online device
// of the user's friends and private-session peers, except those the user
// blocked; nothing when the user hides presence.
func (c *Core) announce(ctx context.Context, app string, u *user, online bool) {
	if c.presenceHidden(ctx, app, u.uid) {
		return
	}
	st, err := c.contactsOf(ctx, app, u.uid)
	if err != nil {
		c.cfg.LogError("presence: load contacts", err)
		return
	}
	v := PresenceView{UID: u.uid, Online: online}
	if online {
		v.Platforms = platformsOf(u)
	} else {
		v.LastSeen = c.lastSeenMem(u)
	}
	var to []string
	c.contacts.mu.Lock()
	for f := range st.friends {
		if _, blocked := st.blocks[f]; !blocked {
			to = append(to, f)
		}
	}
	c.contacts.mu.Unlock()
	seen := make(map[string]bool, len(to))
	for _, f := range to {
		seen[f] = true
	}
	for _, peer := range c.privatePeers(ctx, app, u.uid) {
		if !seen[peer] {
			c.contacts.mu.Lock()
			_, blocked := st.blocks[peer]
			c.contacts.mu.Unlock()
			if !blocked {
				seen[peer] = true
				to = append(to, peer)
			}
		}
	}
	var ev []byte
	n := uint64(0)
	for _, uid := range to {
		r := c.lookupUser(app, uid)
		if r == nil {
			continue
		}
		for _, cl := range r.online() {
			if ev == nil {
				ev = appendEvent(nil, "presence", v) // once, for every recipient
			}
			cl.reply(ev)
			n++
		}
	}
	c.stats.presence.Add(n)
	if c.bus.active() {
		typ := "offline"
		if online {
			typ = "online"
		}
		c.publish(Event{Topic: TopicPresence, App: app, UID: u.uid, Type: typ})
	}
}

// privatePeers lists the other members of a user's private sessions.
func (c *Core) privatePeers(ctx context.Context, app, uid string) []string {
	ids, err := c.store.UserSessions(ctx, app, uid)
	if err != nil {
		c.cfg.LogError("presence: list sessions", err)
		return nil
	}
	var out []string
	for _, sid := range ids {
		s, err := c.session(ctx, app, sid)
		if err != nil || s.kind != KindPrivate {
			continue
		}
		if p := privatePeer(s, uid); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (c *Core) lastSeenMem(u *user) int64 {
	p := &c.presence
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen[u]
}

// presenceHidden reports whether uid hides presence.
func (c *Core) presenceHidden(ctx context.Context, app, uid string) bool {
	p := &c.presence
	p.mu.Lock()
	set, ok := p.hidden[app]
	p.mu.Unlock()
	if !ok {
		gen := c.cacheGen(cacheHidden) // coherent.go
		recs, err := c.scanRecords(ctx, kindHidden, []byte(app+"\x00"), nil, 0, false)
		if err != nil {
			c.cfg.LogError("presence: load hidden users", err)
			return true // fail closed: announce nothing
		}
		set = make(map[string]bool, len(recs))
		for _, r := range recs {
			set[string(r.Key[len(app)+1:])] = true
		}
		p.mu.Lock()
		if p.hidden == nil {
			p.hidden = map[string]map[string]bool{}
		}
		if old, ok := p.hidden[app]; ok {
			set = old
		} else if !c.cacheStale(cacheHidden, gen) { // else another node changed it meanwhile: not cached
			p.hidden[app] = set
		}
		p.mu.Unlock()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return set[uid]
}

// setHidden stores a user's hide-presence setting.
func (c *Core) setHidden(ctx context.Context, id Identity, hide bool) (any, error) {
	was := c.presenceHidden(ctx, id.App, id.UID) // and the app's set is loaded
	u := c.userRef(id.App, id.UID)
	if hide && !was && len(u.online()) > 0 {
		c.announce(ctx, id.App, u, false) // seen going offline, before hiding
	}
	key := []byte(id.App + "\x00" + id.UID)
	var err error
	if hide {
		err = c.writeRecords(ctx, []Record{{Kind: kindHidden, Key: key}}, nil)
	} else {
		err = c.writeRecords(ctx, nil, []RecordKey{{Kind: kindHidden, Key: key}})
	}
	if err != nil {
		return nil, err
	}
	p := &c.presence
	p.mu.Lock()
	if set := p.hidden[id.App]; set == nil {
		// Dropped meanwhile (another node changed it: coherent.go); the
		// next read loads it with this change.
	} else if hide {
		set[id.UID] = true
	} else {
		delete(set, id.UID)
	}
	p.mu.Unlock()
	if !hide && was && len(u.online()) > 0 {
		c.announce(ctx, id.App, u, true)
	}
	return struct {
		Hidden bool `json:"hidden"`
	}{hide}, nil
}

// presenceOf is uid's presence as viewer may see it: offline, without a
// last-seen time, when uid hides presence or has blocked viewer.
func (c *Core) presenceOf(ctx context.Context, app, viewer, uid string) (PresenceView, error) {
	v := PresenceView{UID: uid}
	if uid != viewer {
		if c.presenceHidden(ctx, app, uid) {
			return v, nil
		}
		st, err := c.contactsOf(ctx, app, uid)
		if err != nil {
			return v, err
		}
		c.contacts.mu.Lock()
		_, blocked := st.blocks[viewer]
		c.contacts.mu.Unlock()
		if blocked {
			return v, nil
		}
	}
	u := c.lookupUser(app, uid)
	if u != nil && len(u.online()) > 0 {
		v.Online, v.Platforms = true, platformsOf(u)
		return v, nil
	}
	if u != nil {
		if t := c.lastSeenMem(u); t != 0 {
			v.LastSeen = t
			return v, nil
		}
	}
	b, err := c.record(ctx, kindSeen, []byte(app+"\x00"+uid))
	switch {
	case err == nil && len(b) == 8:
		v.LastSeen = int64(binary.BigEndian.Uint64(b))
	case err != nil && !errors.Is(err, ErrNotFound):
		return v, err
	}
	return v, nil
}

func (c *Core) presenceQuery(ctx context.Context, id Identity, uids []string) (any, error) {
	if len(uids) == 0 {
		return nil, Errf(CodeBadRequest, "missing uids: whose presence to show")
	}
	if len(uids) > maxPresenceQuery {
		return nil, Errf(CodeTooLarge, "at most 200 uids in one presence query")
	}
	out := make([]PresenceView, 0, len(uids))
	for _, uid := range uids {
		v, err := c.presenceOf(ctx, id.App, id.UID, uid)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return struct {
		Presence []PresenceView `json:"presence"`
	}{out}, nil
}

// presenceAction runs a presence or typing action; ok is false for any
// other action.
func (c *Core) presenceAction(ctx context.Context, cl *Client, r *request) (data any, err error, ok bool) {
	switch r.Action {
	case "presence":
		data, err = c.presenceQuery(ctx, cl.id, r.UIDs)
	case "hide_presence":
		data, err = c.setHidden(ctx, cl.id, true)
	case "show_presence":
		data, err = c.setHidden(ctx, cl.id, false)
	case "typing":
		data, err = c.typing(ctx, cl, r.SessionID)
	default:
		return nil, nil, false
	}
	return data, err, true
}
