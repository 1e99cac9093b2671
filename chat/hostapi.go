package chat

import (
	"context"
	"errors"
	"time"
)

// The server API a host backend needs beyond pushing users and sending:
// a user's session list and unread counts as the host sees them, a token
// the host chooses, the list of users, and deleting a user.

// SessionPage is one page of a user's session list (sessionlist.go).
type SessionPage = sessionsReply

// UserSessions returns one page of uid's session list, exactly as the user
// sees it with `sessions` (their pins, mutes and hidden sessions).
func (c *Core) UserSessions(ctx context.Context, app, uid string, in SessionListInput) (*SessionPage, error) {
	if _, err := c.User(ctx, app, uid); err != nil {
		return nil, err
	}
	return c.sessionList(ctx, Identity{App: app, UID: uid}, in)
}

// UnreadCounts are a user's unread messages.
type UnreadCounts struct {
	Unread        uint64 `json:"unread"`         // in every session the user's list holds, muted ones included
	UnreadUnmuted uint64 `json:"unread_unmuted"` // the same without muted sessions: the badge number
}

// Unread counts uid's unread messages.
func (c *Core) Unread(ctx context.Context, app, uid string) (UnreadCounts, error) {
	p, err := c.UserSessions(ctx, app, uid, SessionListInput{Limit: 1})
	if err != nil {
		return UnreadCounts{}, err
	}
	return UnreadCounts{Unread: p.Unread, UnreadUnmuted: p.UnreadUnmuted}, nil
}

// Limits of a host-chosen token.
const (
	minHostToken = 16
	maxHostToken = 256
)

// SetToken stores a token the host chose for uid (instead of one chatd
// generates), valid for ttl (<= 0: the configured default). The token is
// 16–256 printable ASCII bytes; only its hash is kept. A token already in
// use by another user is refused (conflict); the same user's is renewed.
func (c *Core) SetToken(ctx context.Context, app, uid, token string, ttl time.Duration) (TokenGrant, error) {
	if len(token) < minHostToken || len(token) > maxHostToken {
		return TokenGrant{}, Errf(CodeBadRequest, "token must be 16 to 256 bytes")
	}
	for i := 0; i < len(token); i++ {
		if token[i] <= ' ' || token[i] > '~' {
			return TokenGrant{}, Errf(CodeBadRequest, "token must be printable ASCII without spaces")
		}
	}
	if _, err := c.User(ctx, app, uid); err != nil {
		return TokenGrant{}, err
	}
	if ttl <= 0 {
		ttl = c.cfg.TokenTTL
	}
	if ttl > MaxTokenTTL {
		return TokenGrant{}, Errf(CodeBadRequest, "token ttl of "+ttl.String()+" is over the maximum of 365 days")
	}
	h := HashToken(token)
	old, err := c.store.Token(ctx, h)
	switch {
	case err == nil && (old.App != app || old.UID != uid):
		return TokenGrant{}, Errf(CodeConflict, "this token is in use by another user; choose another")
	case err != nil && !errors.Is(err, ErrNotFound):
		return TokenGrant{}, err
	}
	now := c.nowMS()
	t := Token{Hash: h, App: app, UID: uid, CreatedAt: now, ExpiresAt: now + ttl.Milliseconds()}
	if err := c.write(ctx, &Batch{Tokens: []Token{t}}); err != nil {
		return TokenGrant{}, err
	}
	return TokenGrant{Token: token, ExpiresAt: t.ExpiresAt}, nil
}

// UsersPage is one page of an app's users.
type UsersPage struct {
	Users      []User `json:"users"`
	NextCursor string `json:"next_cursor,omitempty"` // the last uid; empty at the end
}

// ListUsers pages through an app's users (limit: default 100, max 1000).
func (c *Core) ListUsers(ctx context.Context, app, cursor string, limit int) (UsersPage, error) {
	if _, err := c.App(ctx, app); err != nil {
		return UsersPage{}, err
	}
	switch {
	case limit < 0:
		return UsersPage{}, Errf(CodeBadRequest, "limit must not be negative")
	case limit == 0:
		limit = 100
	case limit > 1000:
		limit = 1000
	}
	us, err := c.store.Users(ctx, app, cursor, limit+1)
	if err != nil {
		return UsersPage{}, err
	}
	p := UsersPage{Users: us}
	if len(us) > limit {
		p.Users = us[:limit]
		p.NextCursor = us[limit-1].UID
	}
	if p.Users == nil {
		p.Users = []User{}
	}
	for i := range p.Users {
		p.Users[i].Extra = cleanStored(p.Users[i].Extra)
	}
	return p, nil
}

// DeletedUser says what deleting a user removed.
type DeletedUser struct {
	UID      string `json:"uid"`
	Kicked   int    `json:"kicked"`   // connections closed
	Sessions int    `json:"sessions"` // memberships ended
	Friends  int    `json:"friends"`  // friendships ended
	Erased   int    `json:"erased"`   // messages erased (erase only)
}

// DeleteUser removes a user: their tokens (open connections are closed
// with 4002 "user deleted"), their memberships (a group owner's group
// passes on as when they leave), their friendships, requests, blocks and
// session flags, and the user record. Their messages stay, as sent, unless
// erase: then every message they sent in the sessions they were a member
// of is replaced, under its seq, by one of type "deleted" with empty
// content.
func (c *Core) DeleteUser(ctx context.Context, app, uid string, erase bool) (DeletedUser, error) {
	res := DeletedUser{UID: uid}
	if _, err := c.User(ctx, app, uid); err != nil {
		return res, err
	}
	if err := c.write(ctx, &Batch{DelUserTokens: []UserKey{{App: app, UID: uid}}}); err != nil {
		return res, err
	}
	for _, cl := range c.userRef(app, uid).online() {
		c.logout(cl, "user deleted")
		cl.peer.Close(CloseKicked, "user deleted")
		res.Kicked++
	}
	ids, err := c.store.UserSessions(ctx, app, uid)
	if err != nil {
		return res, err
	}
	if erase {
		for _, sid := range ids {
			n, err := c.eraseMessages(ctx, sid, uid)
			res.Erased += n
			if err != nil {
				return res, err
			}
		}
	}
	me := Identity{App: app, UID: uid}
	for _, sid := range ids {
		s, err := c.session(ctx, app, sid)
		if err != nil {
			continue
		}
		if s.kind == KindGroup {
			if err := c.groupRemove(ctx, me, sid, []string{uid}); err != nil {
				return res, err
			}
			res.Sessions++
			continue
		}
		if err := c.dropMember(ctx, s, uid); err != nil {
			return res, err
		}
		res.Sessions++
	}
	n, err := c.dropContacts(ctx, app, uid)
	res.Friends = n
	if err != nil {
		return res, err
	}
	if err := c.write(ctx, &Batch{DelUsers: []UserKey{{App: app, UID: uid}}}); err != nil {
		return res, err
	}
	return res, nil
}

// dropMember ends uid's membership of a private or system session.
func (c *Core) dropMember(ctx context.Context, s *sess, uid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := c.write(ctx, &Batch{DelMembers: []MemberKey{{Session: s.id, UID: uid}}}); err != nil {
		return err
	}
	r := s.members()
	var rest []Member
	for _, u := range r.users {
		if u.uid != uid {
			rest = append(rest, Member{UID: u.uid, Role: r.roles[u.uid]})
		}
	}
	s.roster.Store(c.newRoster(s.app, rest))
	return nil
}

// eraseMessages replaces uid's messages in a session, 1,000 at a time.
func (c *Core) eraseMessages(ctx context.Context, sid SessionID, uid string) (int, error) {
	n := 0
	for lo := uint64(1); ; {
		ms, err := c.store.Messages(ctx, sid, lo, ^uint64(0), 1000, false)
		if err != nil || len(ms) == 0 {
			return n, err
		}
		var out []Message
		for _, m := range ms {
			if m.From == uid && m.Type != "deleted" {
				out = append(out, Message{Session: m.Session, Seq: m.Seq, App: m.App, From: m.From,
					Type: "deleted", Content: []byte("{}"), CreatedAt: m.CreatedAt})
			}
		}
		if len(out) > 0 {
			if err := c.write(ctx, &Batch{Messages: out}); err != nil {
				return n, err
			}
			n += len(out)
		}
		lo = ms[len(ms)-1].Seq + 1
	}
}

// dropContacts deletes every contact record of uid's side (friendships on
// both sides, requests both ways, uid's blocks, session flags, presence
// settings) and forgets uid's cached side. It returns the friendships
// ended. Blocks other users set on uid are theirs and stay.
func (c *Core) dropContacts(ctx context.Context, app, uid string) (int, error) {
	st, err := c.contactsOf(ctx, app, uid)
	if err != nil {
		return 0, err
	}
	c.contacts.mu.Lock()
	var friends, ins, outs, blocks []string
	for f := range st.friends {
		friends = append(friends, f)
	}
	for f := range st.in {
		ins = append(ins, f)
	}
	for f := range st.out {
		outs = append(outs, f)
	}
	for f := range st.blocks {
		blocks = append(blocks, f)
	}
	c.contacts.mu.Unlock()
	var pairs [][2]string
	for _, l := range [][]string{friends, ins, outs, blocks} {
		for _, p := range l {
			pairs = append(pairs, [2]string{uid, p})
		}
	}
	unlock := c.contacts.lockPairs(app, pairs)
	defer unlock()
	var dels []RecordKey
	for _, f := range friends {
		dels = append(dels, RecordKey{Kind: kindFriend, Key: contactKey(app, uid, f)}, RecordKey{Kind: kindFriend, Key: contactKey(app, f, uid)})
	}
	for _, f := range ins {
		dels = append(dels, RecordKey{Kind: kindReqIn, Key: contactKey(app, uid, f)}, RecordKey{Kind: kindReqOut, Key: contactKey(app, f, uid)})
	}
	for _, f := range outs {
		dels = append(dels, RecordKey{Kind: kindReqOut, Key: contactKey(app, uid, f)}, RecordKey{Kind: kindReqIn, Key: contactKey(app, f, uid)})
	}
	for _, f := range blocks {
		dels = append(dels, RecordKey{Kind: kindBlock, Key: contactKey(app, uid, f)})
	}
	flags, err := c.scanRecords(ctx, kindSessFlags, contactKey(app, uid, ""), nil, 0, false)
	if err != nil {
		return 0, err
	}
	for _, r := range flags {
		dels = append(dels, RecordKey{Kind: kindSessFlags, Key: r.Key})
	}
	dels = append(dels, RecordKey{Kind: kindHidden, Key: []byte(app + "\x00" + uid)},
		RecordKey{Kind: kindSeen, Key: []byte(app + "\x00" + uid)})
	if err := c.writeRecords(ctx, nil, dels); err != nil {
		return 0, err
	}
	c.contacts.mu.Lock()
	for _, l := range [][]string{friends, ins, outs} {
		for _, f := range l {
			if o := c.contacts.states[userKey(app, f)]; o != nil {
				delete(o.friends, uid)
				delete(o.in, uid)
				delete(o.out, uid)
			}
		}
	}
	delete(c.contacts.states, userKey(app, uid))
	c.contacts.mu.Unlock()
	p := &c.presence
	p.mu.Lock()
	delete(p.hidden[app], uid)
	p.mu.Unlock()
	return len(friends), nil
}

// privateFound returns the private session sid of a and b, first making
// both members again if one was deleted (DeleteUser) and pushed anew.
func (c *Core) privateFound(ctx context.Context, app string, sid SessionID, a, b string) (*sess, error) {
	s, err := c.session(ctx, app, sid)
	if err != nil {
		return nil, err
	}
	if r := s.members(); r.has(a) && r.has(b) {
		return s, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.members()
	now := c.nowMS()
	var ms []Member
	for _, uid := range []string{a, b} {
		if !r.has(uid) {
			if _, err := c.User(ctx, app, uid); err != nil {
				return nil, err
			}
			ms = append(ms, Member{Session: sid, UID: uid, Role: RoleMember, JoinedAt: now})
		}
	}
	if len(ms) == 0 {
		return s, nil
	}
	if err := c.write(ctx, &Batch{Members: ms}); err != nil {
		return nil, err
	}
	s.roster.Store(c.extendRoster(app, r, ms))
	return s, nil
}
