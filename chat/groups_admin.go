package chat

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Groups, complete: roles (owner grants and revokes admin, transfers
// ownership), dismiss, mutes, the announcement, the join policy, the
// member limit and what new members see; and the host's server API for
// all of it.
//
// A group's settings beyond its Session and Member records are one
// GroupConf record (kind KindGroupConf, key the session id), rewritten
// whole on each change (they are rare). The core caches it with the
// session (sess.conf, an immutable snapshot swapped under sess.mu) so that
// a send checks mutes and dismissal with one atomic load; a group that
// never had a setting changed has no record and a nil snapshot.

// KindGroupConf is the record kind of groups' settings.
const KindGroupConf = "group.conf"

// Join policies: who may add members to a group.
const (
	JoinMembers = "members" // any member
	JoinAdmins  = "admins"  // the owner and admins (the default)
	JoinHost    = "host"    // only the host, over the server API
)

// GroupConf is a group's settings.
type GroupConf struct {
	Dismissed    bool             `json:"dismissed,omitempty"`
	DismissedAt  int64            `json:"dismissed_at,omitempty"`
	DismissedBy  string           `json:"dismissed_by,omitempty"` // "": the host
	MuteAll      bool             `json:"mute_all,omitempty"`
	Muted        map[string]int64 `json:"muted,omitempty"` // uid → muted until (unix ms)
	Announcement *Announcement    `json:"announcement,omitempty"`
	JoinPolicy   string           `json:"join_policy,omitempty"` // "" means JoinAdmins
}

// Announcement is a group's notice board.
type Announcement struct {
	Text string `json:"text"`
	By   string `json:"by"` // "": the host
	At   int64  `json:"at"`
}

func (cf *GroupConf) policy() string {
	if cf == nil || cf.JoinPolicy == "" {
		return JoinAdmins
	}
	return cf.JoinPolicy
}

// clone returns a copy that a writer may change.
func (cf *GroupConf) clone() *GroupConf {
	if cf == nil {
		return &GroupConf{Muted: map[string]int64{}}
	}
	n := *cf
	n.Muted = make(map[string]int64, len(cf.Muted))
	for k, v := range cf.Muted {
		n.Muted[k] = v
	}
	if cf.Announcement != nil {
		a := *cf.Announcement
		n.Announcement = &a
	}
	return &n
}

func groupConfKey(sid SessionID) []byte { return binary.BigEndian.AppendUint64(nil, uint64(sid)) }

// loadGroupConf reads a group's settings (nil: none stored).
func (c *Core) loadGroupConf(ctx context.Context, sid SessionID) (*GroupConf, error) {
	b, err := c.store.Record(ctx, KindGroupConf, groupConfKey(sid))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	cf := new(GroupConf)
	if err := json.Unmarshal(b, cf); err != nil {
		return nil, errors.New("chat: group " + itoa(uint64(sid)) + " settings: " + err.Error())
	}
	return cf, nil
}

// speakCheck refuses a send into a group that is dismissed, or by a
// member who is muted (or not an owner or admin while everyone is). from
// "" is the host. Hot path: one atomic load when the group has no settings.
func (c *Core) speakCheck(s *sess, r *roster, from string) *Error {
	cf := s.conf.Load()
	if cf == nil {
		return nil
	}
	if cf.Dismissed {
		return Errf(CodeForbidden, "group "+itoa(uint64(s.id))+" was dismissed; it is read-only")
	}
	if from == "" {
		return nil
	}
	role := r.roles[from]
	if until, ok := cf.Muted[from]; ok && role < RoleOwner {
		if now := c.nowMS(); until > now {
			return Errf(CodeForbidden, "you are muted in group "+itoa(uint64(s.id))+" until "+time.UnixMilli(until).UTC().Format(time.RFC3339))
		}
	}
	if cf.MuteAll && role < RoleAdmin {
		return Errf(CodeForbidden, "group "+itoa(uint64(s.id))+" is muted: only the owner and admins may speak")
	}
	return nil
}

// writableGroup refuses changes to a dismissed group.
func writableGroup(s *sess) *Error {
	if cf := s.conf.Load(); cf != nil && cf.Dismissed {
		return Errf(CodeForbidden, "group "+itoa(uint64(s.id))+" was dismissed; it is read-only")
	}
	return nil
}

// mayInvite checks the join policy for a member adding others.
func (c *Core) mayInvite(s *sess, r *roster, uid string) *Error {
	if e := writableGroup(s); e != nil {
		return e
	}
	switch s.conf.Load().policy() {
	case JoinMembers:
		return nil
	case JoinHost:
		return Errf(CodeForbidden, "members of group "+itoa(uint64(s.id))+" are added by the host site only")
	}
	if r.roles[uid] < RoleAdmin {
		return Errf(CodeForbidden, "only the owner or an admin can add members")
	}
	return nil
}

// checkGroupSize refuses growing a group of have members by add past the
// limit.
func (c *Core) checkGroupSize(have, add int) *Error {
	if have+add > c.cfg.MaxGroupMembers {
		return Errf(CodeForbidden, "a group has at most "+strconv.Itoa(c.cfg.MaxGroupMembers)+" members; this one has "+strconv.Itoa(have))
	}
	return nil
}

// joinHidden adds to b, for members joining s now, the hidden range of
// the history before them when new members see it from their join only
// (Config.NewMembersFromJoin).
func (c *Core) joinHidden(ctx context.Context, s *sess, ms []Member, b *Batch) error {
	if !c.cfg.NewMembersFromJoin {
		return nil
	}
	rec, err := c.store.Session(ctx, s.id)
	if err != nil {
		return err
	}
	if rec.LastSeq == 0 {
		return nil
	}
	v := encodeHidden(hiddenSet{{Lo: 1, Hi: rec.LastSeq}})
	for _, m := range ms {
		b.Records = append(b.Records, Record{Kind: KindHidden, Key: hiddenKey(s.id, m.UID), Value: v})
	}
	return nil
}

// groupAdmin is one admin action's context: the group, locked, and the
// actor ("" for the host) with their role.
type groupAdmin struct {
	s     *sess
	r     *roster
	actor string
	role  Role
}

// lockGroup finds group sid of app, checks the actor is in it (the host
// always is, as the owner), and locks it. The caller unlocks s.mu.
func (c *Core) lockGroup(ctx context.Context, app, actor string, sid SessionID) (*groupAdmin, error) {
	if sid == 0 {
		return nil, Errf(CodeBadRequest, "missing session_id")
	}
	s, err := c.session(ctx, app, sid)
	if err != nil {
		return nil, err
	}
	if s.kind != KindGroup {
		return nil, Errf(CodeBadRequest, "session "+itoa(uint64(sid))+" is not a group")
	}
	s.mu.Lock()
	r := s.members()
	g := &groupAdmin{s: s, r: r, actor: actor, role: RoleOwner}
	if actor != "" {
		role, ok := r.roles[actor]
		if !ok {
			s.mu.Unlock()
			return nil, Errf(CodeForbidden, "not a member of session "+itoa(uint64(sid)))
		}
		g.role = role
	}
	return g, nil
}

// need refuses an actor below role.
func (g *groupAdmin) need(role Role, what string) *Error {
	if g.role < role {
		who := "the owner"
		if role == RoleAdmin {
			who = "the owner or an admin"
		}
		return Errf(CodeForbidden, "only "+who+" can "+what)
	}
	return nil
}

// saveConf writes cf (with b's other changes) and swaps it in.
func (c *Core) saveConf(ctx context.Context, s *sess, cf *GroupConf, b *Batch) error {
	v, err := json.Marshal(cf)
	if err != nil {
		return err
	}
	if b == nil {
		b = &Batch{}
	}
	b.Records = append(b.Records, Record{Kind: KindGroupConf, Key: groupConfKey(s.id), Value: v})
	if err := c.write(ctx, b); err != nil {
		return err
	}
	s.conf.Store(cf)
	return nil
}

// groupOpEvent is the `group` event of the admin operations.
type groupOpEvent struct {
	SessionID    SessionID     `json:"session_id"`
	Op           string        `json:"op"`
	By           string        `json:"by"`
	UIDs         []string      `json:"uids,omitempty"`
	Role         string        `json:"role,omitempty"`
	Until        int64         `json:"until,omitempty"` // mute: unix ms; 0 = unmuted
	MuteAll      *bool         `json:"mute_all,omitempty"`
	Announcement *Announcement `json:"announcement,omitempty"`
	JoinPolicy   string        `json:"join_policy,omitempty"`
}

func (c *Core) groupOpEvent(s *sess, r *roster, ev groupOpEvent) {
	b := appendEvent(nil, "group", ev)
	for _, u := range r.users {
		for _, cl := range u.online() {
			cl.reply(b)
		}
	}
	c.publish(Event{Topic: TopicGroup, App: s.app, UID: ev.By, Session: s.id, Type: ev.Op, Members: ev.UIDs})
}

// groupWebhook returns a batch carrying the group_changed webhook of op
// (webhooks.go), to be committed with the change.
func (c *Core) groupWebhook(app string, sid SessionID, op, by string, uids []string) *Batch {
	b := &Batch{}
	c.emitWebhook(b, app, WebhookEvent{Type: WebhookGroupChanged, Data: groupEventData{SessionID: sid, Op: op, By: by, UIDs: uids}})
	return b
}

// ---- the operations; actor "" is the host.

// GroupSetRole makes uid an admin or a member (owner only), or the owner
// (a transfer: the old owner becomes an admin).
func (c *Core) GroupSetRole(ctx context.Context, app, actor string, sid SessionID, uid, role string) error {
	g, err := c.lockGroup(ctx, app, actor, sid)
	if err != nil {
		return err
	}
	defer g.s.mu.Unlock()
	if e := writableGroup(g.s); e != nil {
		return e
	}
	what := "change roles"
	if role == "owner" {
		what = "transfer the group"
	}
	if e := g.need(RoleOwner, what); e != nil {
		return e
	}
	cur, ok := g.r.roles[uid]
	if !ok {
		return Errf(CodeNotFound, "\""+clip(uid, 64)+"\" is not a member of group "+itoa(uint64(sid)))
	}
	var want Role
	switch role {
	case "admin":
		want = RoleAdmin
	case "member":
		want = RoleMember
	case "owner":
		want = RoleOwner
	default:
		return Errf(CodeBadRequest, "role must be owner, admin or member")
	}
	if cur == RoleOwner {
		return Errf(CodeBadRequest, "\""+clip(uid, 64)+"\" is the owner; transfer the group to someone else instead")
	}
	if cur == want {
		return nil
	}
	m, err := c.store.Member(ctx, sid, uid)
	if err != nil {
		return err
	}
	m.Role = want
	op := "role"
	if want == RoleOwner {
		op = "transfer"
	}
	b := c.groupWebhook(app, sid, op, actor, []string{uid})
	b.Members = []Member{m}
	all := make([]Member, 0, len(g.r.users))
	for _, u := range g.r.users {
		all = append(all, Member{UID: u.uid, Role: g.r.roles[u.uid]})
	}
	for i := range all {
		if all[i].UID == uid {
			all[i].Role = want
		}
	}
	if want == RoleOwner {
		rec, err := c.store.Session(ctx, sid)
		if err != nil {
			return err
		}
		old := rec.Owner
		rec.Owner = uid
		b.Sessions = []Session{rec}
		if old != "" && g.r.has(old) {
			om, err := c.store.Member(ctx, sid, old)
			if err != nil {
				return err
			}
			om.Role = RoleAdmin
			b.Members = append(b.Members, om)
			for i := range all {
				if all[i].UID == old {
					all[i].Role = RoleAdmin
				}
			}
		}
	}
	if err := c.write(ctx, b); err != nil {
		return err
	}
	next := c.newRoster(app, all)
	g.s.roster.Store(next)
	c.groupOpEvent(g.s, next, groupOpEvent{SessionID: sid, Op: op, By: actor, UIDs: []string{uid}, Role: role})
	return nil
}

// changeConf runs one change of a group's settings: under the group's
// lock, on a group that is not dismissed, by an actor of at least role
// (what names the act in the refusal). change edits a copy of the
// settings and the event (which starts as {session, op, by}); the copy is
// saved with its group.changed webhook (for the event's UIDs) and the
// event sent to the members.
func (c *Core) changeConf(ctx context.Context, app, actor string, sid SessionID, role Role, what, op string,
	change func(g *groupAdmin, cf *GroupConf, ev *groupOpEvent) *Error) (*GroupConf, error) {
	g, err := c.lockGroup(ctx, app, actor, sid)
	if err != nil {
		return nil, err
	}
	defer g.s.mu.Unlock()
	if e := writableGroup(g.s); e != nil {
		return nil, e
	}
	if e := g.need(role, what); e != nil {
		return nil, e
	}
	cf := g.s.conf.Load().clone()
	ev := groupOpEvent{SessionID: sid, Op: op, By: actor}
	if e := change(g, cf, &ev); e != nil {
		return nil, e
	}
	if err := c.saveConf(ctx, g.s, cf, c.groupWebhook(app, sid, op, actor, ev.UIDs)); err != nil {
		return nil, err
	}
	c.groupOpEvent(g.s, g.r, ev)
	return cf, nil
}

// GroupMute mutes uid for d (0: unmutes). The owner mutes anyone but
// themselves; admins mute members.
func (c *Core) GroupMute(ctx context.Context, app, actor string, sid SessionID, uid string, d time.Duration) (until int64, err error) {
	_, err = c.changeConf(ctx, app, actor, sid, RoleAdmin, "mute members", "mute", func(g *groupAdmin, cf *GroupConf, ev *groupOpEvent) *Error {
		role, ok := g.r.roles[uid]
		switch {
		case !ok:
			return Errf(CodeNotFound, "\""+clip(uid, 64)+"\" is not a member of group "+itoa(uint64(sid)))
		case role == RoleOwner:
			return Errf(CodeForbidden, "the owner cannot be muted")
		case actor != "" && role >= g.role:
			return Errf(CodeForbidden, "only the owner can mute admins")
		case d < 0 || d > 366*24*time.Hour:
			return Errf(CodeBadRequest, "seconds must be between 0 (unmute) and 366 days")
		}
		now := c.nowMS()
		if d == 0 {
			delete(cf.Muted, uid)
		} else {
			until = now + d.Milliseconds()
			cf.Muted[uid] = until
		}
		// Expired mutes are dropped as the record is rewritten.
		for k, v := range cf.Muted {
			if v <= now {
				delete(cf.Muted, k)
			}
		}
		ev.UIDs, ev.Until = []string{uid}, until
		return nil
	})
	if err != nil {
		return 0, err
	}
	return until, nil
}

// GroupMuteAll turns "only the owner and admins speak" on or off.
func (c *Core) GroupMuteAll(ctx context.Context, app, actor string, sid SessionID, on bool) error {
	_, err := c.changeConf(ctx, app, actor, sid, RoleAdmin, "mute the group", "mute_all", func(_ *groupAdmin, cf *GroupConf, ev *groupOpEvent) *Error {
		cf.MuteAll, ev.MuteAll = on, &on
		return nil
	})
	return err
}

// GroupAnnounce sets (text "" clears) the group's announcement.
func (c *Core) GroupAnnounce(ctx context.Context, app, actor string, sid SessionID, text string) (*Announcement, error) {
	if len(text) > 4096 {
		return nil, Errf(CodeTooLarge, "an announcement has at most 4096 bytes")
	}
	if !utf8.ValidString(text) {
		return nil, Errf(CodeBadRequest, "announcement is not valid UTF-8")
	}
	cf, err := c.changeConf(ctx, app, actor, sid, RoleAdmin, "set the announcement", "announce", func(_ *groupAdmin, cf *GroupConf, ev *groupOpEvent) *Error {
		cf.Announcement = nil
		if text != "" {
			cf.Announcement = &Announcement{Text: text, By: actor, At: c.nowMS()}
		}
		ev.Announcement = cf.Announcement
		return nil
	})
	if err != nil {
		return nil, err
	}
	return cf.Announcement, nil
}

// GroupSetPolicy sets who may add members (owner or host).
func (c *Core) GroupSetPolicy(ctx context.Context, app, actor string, sid SessionID, policy string) error {
	switch policy {
	case JoinMembers, JoinAdmins, JoinHost:
	default:
		return Errf(CodeBadRequest, "join_policy must be members, admins or host")
	}
	_, err := c.changeConf(ctx, app, actor, sid, RoleOwner, "set the join policy", "policy", func(_ *groupAdmin, cf *GroupConf, ev *groupOpEvent) *Error {
		cf.JoinPolicy, ev.JoinPolicy = policy, policy
		return nil
	})
	return err
}

// GroupDismiss ends a group (owner or host): members get a `group` event
// with op "dismiss", and the group becomes read-only. Its history stays
// readable unless Config.DismissHidesHistory.
func (c *Core) GroupDismiss(ctx context.Context, app, actor string, sid SessionID) error {
	g, err := c.lockGroup(ctx, app, actor, sid)
	if err != nil {
		return err
	}
	defer g.s.mu.Unlock()
	if e := writableGroup(g.s); e != nil {
		return Errf(CodeConflict, "group "+itoa(uint64(sid))+" was already dismissed")
	}
	if e := g.need(RoleOwner, "dismiss the group"); e != nil {
		return e
	}
	cf := g.s.conf.Load().clone()
	cf.Dismissed, cf.DismissedAt, cf.DismissedBy = true, c.nowMS(), actor
	if err := c.saveConf(ctx, g.s, cf, c.groupWebhook(app, sid, "dismiss", actor, nil)); err != nil {
		return err
	}
	c.groupOpEvent(g.s, g.r, groupOpEvent{SessionID: sid, Op: "dismiss", By: actor})
	return nil
}

// dismissedHistory refuses reading a dismissed group's history when the
// server hides it (Config.DismissHidesHistory).
func (c *Core) dismissedHistory(s *sess) *Error {
	if !c.cfg.DismissHidesHistory {
		return nil
	}
	if cf := s.conf.Load(); cf != nil && cf.Dismissed {
		return Errf(CodeForbidden, "group "+itoa(uint64(s.id))+" was dismissed and its history is no longer available")
	}
	return nil
}

// GroupMembers is one page of a group's members, by uid.
type GroupMembers struct {
	Members []Member `json:"members"`
	Next    string   `json:"next,omitempty"` // the uid to pass as after for the next page
}

// ListGroupMembers pages through a group's members in uid order, after
// the uid `after`, at most limit (default 100, at most 1000).
func (c *Core) ListGroupMembers(ctx context.Context, app string, sid SessionID, after string, limit int) (*GroupMembers, error) {
	s, err := c.session(ctx, app, sid)
	if err != nil {
		return nil, err
	}
	if s.kind != KindGroup {
		return nil, Errf(CodeBadRequest, "session "+itoa(uint64(sid))+" is not a group")
	}
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	ms, err := c.store.Members(ctx, sid)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ms, func(a, b Member) int {
		switch {
		case a.UID < b.UID:
			return -1
		case a.UID > b.UID:
			return 1
		}
		return 0
	})
	i, _ := slices.BinarySearchFunc(ms, after, func(m Member, k string) int {
		switch {
		case m.UID < k:
			return -1
		case m.UID > k:
			return 1
		}
		return 0
	})
	if after != "" && i < len(ms) && ms[i].UID == after {
		i++
	}
	out := &GroupMembers{Members: ms[i:min(i+limit, len(ms))]}
	if i+limit < len(ms) {
		out.Next = out.Members[len(out.Members)-1].UID
	}
	return out, nil
}

// HostAddMembers adds members as the host: no join policy, no budgets,
// the member limit and dismissal still apply.
func (c *Core) HostAddMembers(ctx context.Context, app string, sid SessionID, uids []string) (added []string, err error) {
	if len(uids) == 0 {
		return nil, Errf(CodeBadRequest, "missing uids: whom to add")
	}
	g, err := c.lockGroup(ctx, app, "", sid)
	if err != nil {
		return nil, err
	}
	defer g.s.mu.Unlock()
	if e := writableGroup(g.s); e != nil {
		return nil, e
	}
	now := c.nowMS()
	var ms []Member
	seen := map[string]bool{}
	for _, uid := range uids {
		if g.r.has(uid) || seen[uid] {
			continue
		}
		seen[uid] = true
		if _, err := c.User(ctx, app, uid); err != nil {
			return nil, err
		}
		ms = append(ms, Member{Session: sid, UID: uid, Role: RoleMember, JoinedAt: now})
	}
	if len(ms) == 0 {
		return []string{}, nil
	}
	if e := c.checkGroupSize(len(g.r.users), len(ms)); e != nil {
		return nil, e
	}
	uidsOf := make([]string, len(ms))
	for i, m := range ms {
		uidsOf[i] = m.UID
	}
	b := c.groupWebhook(app, sid, "add", "", uidsOf)
	b.Members = ms
	if err := c.joinHidden(ctx, g.s, ms, b); err != nil {
		return nil, err
	}
	if err := c.write(ctx, b); err != nil {
		return nil, err
	}
	next := c.extendRoster(app, g.r, ms)
	g.s.roster.Store(next)
	added = make([]string, len(ms))
	for i, m := range ms {
		added[i] = m.UID
	}
	c.groupEvent(g.s, next, "add", "", added)
	return added, nil
}

// HostRemoveMembers removes members as the host (the owner too: the
// group then goes to an admin, or else the longest-standing member).
func (c *Core) HostRemoveMembers(ctx context.Context, app string, sid SessionID, uids []string) (removed []string, err error) {
	if len(uids) == 0 {
		return nil, Errf(CodeBadRequest, "missing uids: whom to remove")
	}
	g, err := c.lockGroup(ctx, app, "", sid)
	if err != nil {
		return nil, err
	}
	defer g.s.mu.Unlock()
	gone := map[string]bool{}
	var del []MemberKey
	for _, uid := range uids {
		if g.r.has(uid) && !gone[uid] {
			gone[uid] = true
			del = append(del, MemberKey{Session: sid, UID: uid})
			removed = append(removed, uid)
		}
	}
	if len(del) == 0 {
		return []string{}, nil
	}
	b := c.groupWebhook(app, sid, "remove", "", removed)
	b.DelMembers = del
	var rest []Member
	ownerGone := false
	for _, u := range g.r.users {
		if gone[u.uid] {
			ownerGone = ownerGone || g.r.roles[u.uid] == RoleOwner
			continue
		}
		rest = append(rest, Member{UID: u.uid, Role: g.r.roles[u.uid]})
	}
	if ownerGone && len(rest) > 0 {
		heir := 0
		for i, m := range rest {
			if m.Role == RoleAdmin {
				heir = i
				break
			}
		}
		full, err := c.store.Member(ctx, sid, rest[heir].UID)
		if err != nil {
			return nil, err
		}
		full.Role, rest[heir].Role = RoleOwner, RoleOwner
		b.Members = append(b.Members, full)
		rec, err := c.store.Session(ctx, sid)
		if err != nil {
			return nil, err
		}
		rec.Owner = full.UID
		b.Sessions = append(b.Sessions, rec)
	}
	if err := c.write(ctx, b); err != nil {
		return nil, err
	}
	next := c.newRoster(app, rest)
	g.s.roster.Store(next)
	c.groupEvent(g.s, next, "remove", "", removed)
	ev := appendEvent(nil, "group", groupEventData{SessionID: sid, Op: "remove", By: "", UIDs: removed})
	for _, uid := range removed {
		for _, cl := range c.userRef(app, uid).online() {
			cl.reply(ev)
		}
	}
	return removed, nil
}

// groupInfo is what a session view shows of a group's settings.
type groupInfo struct {
	Announcement *Announcement `json:"announcement,omitempty"`
	Dismissed    bool          `json:"dismissed,omitempty"`
	MuteAll      bool          `json:"mute_all,omitempty"`
	MutedUntil   int64         `json:"muted_until,omitempty"` // the viewer's own mute
	JoinPolicy   string        `json:"join_policy,omitempty"`
}

// groupView returns the settings a member sees in the session view (nil
// when the group has none): from the cached session, or else from the
// store without loading the group's roster (a session list after a
// restart would otherwise load every group's members).
func (c *Core) groupView(ctx context.Context, app string, sid SessionID, uid string) (*groupInfo, error) {
	var cf *GroupConf
	if s := c.cached(app, sid); s != nil {
		cf = s.conf.Load()
	} else {
		var err error
		if cf, err = c.loadGroupConf(ctx, sid); err != nil {
			return nil, err
		}
	}
	if cf == nil {
		return nil, nil
	}
	gi := &groupInfo{Announcement: cf.Announcement, Dismissed: cf.Dismissed, MuteAll: cf.MuteAll, JoinPolicy: cf.policy()}
	if until := cf.Muted[uid]; until > c.nowMS() {
		gi.MutedUntil = until
	}
	return gi, nil
}

// ---- client actions

func (c *Core) groupAction(ctx context.Context, id Identity, r *request) (any, error) {
	switch r.Action {
	case "group_role":
		return nil, c.GroupSetRole(ctx, id.App, id.UID, r.SessionID, r.UID, r.Role)
	case "group_transfer":
		return nil, c.GroupSetRole(ctx, id.App, id.UID, r.SessionID, r.UID, "owner")
	case "group_mute":
		if r.UID == "" {
			return nil, Errf(CodeBadRequest, "missing uid: whom to mute")
		}
		until, err := c.GroupMute(ctx, id.App, id.UID, r.SessionID, r.UID, time.Duration(r.Seconds)*time.Second)
		if err != nil {
			return nil, err
		}
		return map[string]int64{"until": until}, nil
	case "group_mute_all":
		if r.Enabled == nil {
			return nil, Errf(CodeBadRequest, "missing enabled: true mutes everyone but the owner and admins, false ends it")
		}
		return nil, c.GroupMuteAll(ctx, id.App, id.UID, r.SessionID, *r.Enabled)
	case "group_announce":
		return c.GroupAnnounce(ctx, id.App, id.UID, r.SessionID, r.Text)
	case "group_policy":
		return nil, c.GroupSetPolicy(ctx, id.App, id.UID, r.SessionID, r.JoinPolicy)
	case "group_dismiss":
		return nil, c.GroupDismiss(ctx, id.App, id.UID, r.SessionID)
	}
	return nil, Errf(CodeBadRequest, "unknown action \""+clip(r.Action, 40)+"\"")
}

// maxHostGroupID bounds a host-chosen group id (JavaScript's safe
// integers, as ids travel in JSON).
const maxHostGroupID = 1<<53 - 1

// hostGroupID reserves id for a group the host creates: it must be above
// every session id handed out so far (so the core's own allocation, which
// continues after it, can never hand it out again).
func (c *Core) hostGroupID(ctx context.Context, id SessionID) error {
	if id > maxHostGroupID {
		return Errf(CodeBadRequest, "a group id is at most 2^53-1")
	}
	if c.shared != nil {
		return c.claimSharedID(ctx, id) // shared.go
	}
	for {
		cur := c.nextSession.Load()
		if uint64(id) <= cur {
			return Errf(CodeConflict, "session id "+itoa(uint64(id))+" is taken or below the next free id; choose one above "+itoa(cur))
		}
		if c.nextSession.CompareAndSwap(cur, uint64(id)) {
			return nil
		}
	}
}
