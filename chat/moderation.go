package chat

import (
	"context"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// This file is moderation: the host bans, mutes and kicks users of its app
// over the server API. Bans and mutes are Restriction records in the store
// (durable, loaded at New) and an immutable in-memory table that the login
// and send paths read with one atomic load.

// RestrictionKind is what a Restriction forbids.
type RestrictionKind uint8

const (
	// RestrictBan: the user's connections are closed (4004) and every
	// login (WebSocket and HTTP user API) is refused.
	RestrictBan RestrictionKind = iota + 1
	// RestrictMute: the user's own sends are refused; everything else
	// works.
	RestrictMute
)

func (k RestrictionKind) String() string {
	switch k {
	case RestrictBan:
		return "ban"
	case RestrictMute:
		return "mute"
	}
	return "unknown"
}

// Restriction is a ban or mute of one user of an app, until Until (unix
// ms; 0 means for ever).
type Restriction struct {
	App       string          `json:"-"`
	UID       string          `json:"uid"`
	Kind      RestrictionKind `json:"-"`
	Until     int64           `json:"until"` // unix ms; 0: for ever
	Reason    string          `json:"reason,omitempty"`
	CreatedAt int64           `json:"created_at"` // unix ms
}

// RestrictionKey names a restriction: one per (app, uid, kind).
type RestrictionKey struct {
	App  string
	UID  string
	Kind RestrictionKind
}

// Key is r's key.
func (r *Restriction) Key() RestrictionKey {
	return RestrictionKey{App: r.App, UID: r.UID, Kind: r.Kind}
}

// activeAt reports whether r is in force at now (unix ms).
func (r *Restriction) activeAt(now int64) bool { return r.Until == 0 || r.Until > now }

// CloseBanned is the close code of the connections of a user who was just
// banned.
const CloseBanned = 4004

// moderator holds the restrictions in force.
type moderator struct {
	// mu serialises changes: held across the store write and the table
	// swap, so the table always matches the store. An outer lock like
	// appMu (LOCKS.md): it is never held with another outer lock.
	mu  sync.Mutex
	tab atomic.Pointer[modTable] // immutable; never nil after New
	// reloading, reloadAgain: a cluster's reloads after other nodes'
	// changes, coalesced (reloadModerationCoalesced, coherent.go).
	reloading, reloadAgain atomic.Bool
}

// modTable is an immutable snapshot of every stored restriction.
type modTable struct {
	m     map[RestrictionKey]Restriction
	mutes int // mutes in m: zero lets the send path skip the lookup
}

func newModTable(rs []Restriction) *modTable {
	t := &modTable{m: make(map[RestrictionKey]Restriction, len(rs))}
	for _, r := range rs {
		t.m[r.Key()] = r
	}
	for k := range t.m {
		if k.Kind == RestrictMute {
			t.mutes++
		}
	}
	return t
}

// loadModeration reads the stored restrictions (New).
func (c *Core) loadModeration(ctx context.Context) error {
	rs, err := c.store.Restrictions(ctx)
	if err != nil {
		return errors.New("chat: read restrictions: " + err.Error())
	}
	c.mod.tab.Store(newModTable(rs))
	return nil
}

// restriction returns the restriction of kind on (app, uid) in force now.
func (c *Core) restriction(app, uid string, kind RestrictionKind) (Restriction, bool) {
	t := c.mod.tab.Load()
	if kind == RestrictMute && t.mutes == 0 {
		return Restriction{}, false
	}
	r, ok := t.m[RestrictionKey{App: app, UID: uid, Kind: kind}]
	if !ok || !r.activeAt(c.nowMS()) {
		return Restriction{}, false
	}
	return r, true
}

// bannedErr is the refusal of a banned user's login, or nil.
func (c *Core) bannedErr(app, uid string) *Error {
	r, ok := c.restriction(app, uid, RestrictBan)
	if !ok {
		return nil
	}
	return Errf(CodeForbidden, "user is banned "+untilText(r.Until)+reasonText(r.Reason))
}

// mutedErr is the refusal of a muted user's send, or nil. It costs one
// atomic load while nobody is muted.
func (c *Core) mutedErr(app, uid string) *Error {
	r, ok := c.restriction(app, uid, RestrictMute)
	if !ok {
		return nil
	}
	return Errf(CodeForbidden, "user is muted "+untilText(r.Until)+reasonText(r.Reason)+"; sending is refused, other actions work")
}

func untilText(until int64) string {
	if until == 0 {
		return "permanently"
	}
	return "until " + time.UnixMilli(until).UTC().Format(time.RFC3339)
}

func reasonText(reason string) string {
	if reason == "" {
		return ""
	}
	return " (" + reason + ")"
}

// ModerationInput is a ban or mute as the host asks for it. Until (unix
// ms) or Duration (ms from now) gives the end; neither means for ever.
type ModerationInput struct {
	UID      string `json:"uid"`
	Until    int64  `json:"until,omitempty"`
	Duration int64  `json:"duration_ms,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// Restrict bans or mutes a user of app (replacing an earlier one of the
// same kind). A ban also closes the user's connections with CloseBanned;
// kicked says how many.
func (c *Core) Restrict(ctx context.Context, app string, kind RestrictionKind, in ModerationInput) (r Restriction, kicked int, err error) {
	if kind != RestrictBan && kind != RestrictMute {
		return r, 0, Errf(CodeBadRequest, "unknown restriction")
	}
	if in.UID == "" {
		return r, 0, Errf(CodeBadRequest, "missing uid")
	}
	if in.Until < 0 || in.Duration < 0 || (in.Until != 0 && in.Duration != 0) {
		return r, 0, Errf(CodeBadRequest, "give until (unix ms) or duration_ms (positive), not both; neither means for ever")
	}
	if len(in.Reason) > 512 {
		return r, 0, Errf(CodeTooLarge, "reason longer than 512 bytes")
	}
	if _, err := c.User(ctx, app, in.UID); err != nil {
		return r, 0, err
	}
	now := c.nowMS()
	r = Restriction{App: app, UID: in.UID, Kind: kind, Until: in.Until, Reason: in.Reason, CreatedAt: now}
	if in.Duration > 0 {
		r.Until = now + in.Duration
	}
	if r.Until != 0 && r.Until <= now {
		return Restriction{}, 0, Errf(CodeBadRequest, "until is in the past")
	}
	if err := c.changeRestrictions(ctx, &r, nil); err != nil {
		return Restriction{}, 0, err
	}
	c.publish(Event{Topic: TopicModeration, App: app, UID: in.UID, Type: kind.String(), Until: r.Until, Detail: r.Reason})
	if kind == RestrictBan {
		kicked = c.closeUser(app, in.UID, CloseBanned, "banned", "banned")
	}
	return r, kicked, nil
}

// Unrestrict lifts a user's ban or mute; not_found when there is none in
// force.
func (c *Core) Unrestrict(ctx context.Context, app, uid string, kind RestrictionKind) error {
	if uid == "" {
		return Errf(CodeBadRequest, "missing uid")
	}
	if _, ok := c.restriction(app, uid, kind); !ok {
		return Errf(CodeNotFound, "user \""+clip(uid, 64)+"\" is not under a "+kind.String())
	}
	k := RestrictionKey{App: app, UID: uid, Kind: kind}
	if err := c.changeRestrictions(ctx, nil, &k); err != nil {
		return err
	}
	c.publish(Event{Topic: TopicModeration, App: app, UID: uid, Type: "un" + kind.String()})
	return nil
}

// changeRestrictions stores put or deletes del, then swaps the table.
// Restrictions past their end are dropped from the store on the way.
func (c *Core) changeRestrictions(ctx context.Context, put *Restriction, del *RestrictionKey) error {
	c.mod.mu.Lock()
	defer c.mod.mu.Unlock()
	old := c.mod.tab.Load()
	now := c.nowMS()
	b := &Batch{}
	next := make([]Restriction, 0, len(old.m)+1)
	for k, r := range old.m {
		switch {
		case del != nil && k == *del, put != nil && k == put.Key():
		case !r.activeAt(now):
			b.DelRestrictions = append(b.DelRestrictions, k)
		default:
			next = append(next, r)
		}
	}
	if del != nil {
		b.DelRestrictions = append(b.DelRestrictions, *del)
	}
	if put != nil {
		b.Restrictions = append(b.Restrictions, *put)
		next = append(next, *put)
	}
	if err := c.write(ctx, b); err != nil {
		return err
	}
	c.mod.tab.Store(newModTable(next))
	return nil
}

// Kick closes every connection of a user (close code 4002); the user may
// log in again. It returns how many were closed.
func (c *Core) Kick(ctx context.Context, app, uid string) (int, error) {
	if uid == "" {
		return 0, Errf(CodeBadRequest, "missing uid")
	}
	if _, err := c.User(ctx, app, uid); err != nil {
		return 0, err
	}
	n := c.closeUser(app, uid, CloseKicked, "kicked", "kicked by the host")
	c.publish(Event{Topic: TopicModeration, App: app, UID: uid, Type: "kick", Detail: itoa(uint64(n)) + " connections"})
	return n, nil
}

// closeUser logs out and closes every connection of (app, uid).
func (c *Core) closeUser(app, uid string, code int, why, reason string) int {
	n := 0
	for _, cl := range c.userRef(app, uid).online() {
		c.logout(cl, why)
		cl.peer.Close(code, reason)
		n++
	}
	return n
}

// ModerationList is an app's users under a ban or mute now, by uid.
type ModerationList struct {
	Banned []Restriction `json:"banned"`
	Muted  []Restriction `json:"muted"`
}

// Moderation lists app's bans and mutes in force.
func (c *Core) Moderation(ctx context.Context, app string) ModerationList {
	l := ModerationList{Banned: []Restriction{}, Muted: []Restriction{}}
	now := c.nowMS()
	for k, r := range c.mod.tab.Load().m {
		if k.App != app || !r.activeAt(now) {
			continue
		}
		if k.Kind == RestrictBan {
			l.Banned = append(l.Banned, r)
		} else {
			l.Muted = append(l.Muted, r)
		}
	}
	byUID := func(rs []Restriction) {
		sort.Slice(rs, func(i, j int) bool { return rs[i].UID < rs[j].UID })
	}
	byUID(l.Banned)
	byUID(l.Muted)
	return l
}
