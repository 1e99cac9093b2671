package chat

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// Contacts: friends (with the remark each side gives the other), friend
// requests, blocks, and the app's messaging policy.
//
// Durable state is kept as records (one per fact, keyed
// app\x00uid\x00peer so that one prefix scan reads a user's side):
//
//	ct.friend  app\x00uid\x00peer → friendRec   (both sides: two records)
//	ct.reqin   app\x00to\x00from  → requestRec  (the request, as its target sees it)
//	ct.reqout  app\x00from\x00to  → requestRec  (the same request, as its sender sees it)
//	ct.block   app\x00uid\x00peer → blockRec    (uid blocks peer)
//	app.settings  app             → appSettingsRec
//
// A user's side is loaded into memory the first time it is needed
// (contactsOf) and kept for the process's life, like the user registry.
// Every change takes the pair's stripe of contactBook.locks across "load
// both sides, check, write, update the cache", so the cache and the store
// change in the same order.

// Record kinds of the contacts domain.
const (
	kindFriend   = "ct.friend"
	kindReqIn    = "ct.reqin"
	kindReqOut   = "ct.reqout"
	kindBlock    = "ct.block"
	kindSettings = "app.settings"
)

// TopicContact is the live-stream topic of contact changes.
const TopicContact = "contact"

// Messaging policies of an app (AppSettings.Messaging).
const (
	PolicyAnyone  = "anyone"  // any user may message any user of the app
	PolicyFriends = "friends" // private messages only between friends
	PolicyHost    = "host"    // users write only in sessions the host created
)

// ValidPolicy reports whether p names a messaging policy.
func ValidPolicy(p string) bool { return p == PolicyAnyone || p == PolicyFriends || p == PolicyHost }

// Limits of the contacts domain.
const (
	maxRequestMessage = 256    // bytes of a friend request's message
	maxRemark         = 64     // bytes of a remark
	maxContactPage    = 1000   // friends or blocks in one page
	defContactPage    = 200    // … when the client gives no limit
	maxRequestsListed = 500    // requests listed per direction
	maxImport         = 10_000 // pairs in one host import
)

var contactActions = []string{"friend_request", "friend_accept", "friend_refuse", "friend_cancel",
	"friend_delete", "friend_remark", "friends", "friend_requests", "block", "unblock", "blocks"}

func init() {
	Actions = append(Actions, contactActions...)
	Topics = append(Topics, TopicContact)
}

type friendRec struct {
	Remark string `json:"remark,omitempty"`
	Since  int64  `json:"since"`
}

type requestRec struct {
	Message string `json:"message,omitempty"`
	At      int64  `json:"at"`
}

type blockRec struct {
	At int64 `json:"at"`
}

// AppSettings are an app's host-chosen rules.
type AppSettings struct {
	// Messaging is PolicyAnyone (the default), PolicyFriends or PolicyHost.
	Messaging string `json:"messaging"`
	// Devices is DevicesMulti (the default), DevicesSingle or
	// DevicesOnePerPlatform (devices.go).
	Devices string `json:"devices"`
}

// appSettingsRec is what is stored: the settings and whether any user of
// the app has ever blocked another (until then a private send skips the
// block check).
type appSettingsRec struct {
	AppSettings
	HasBlocks bool `json:"has_blocks,omitempty"`
}

// contactState is one user's side of the contacts, guarded by
// contactBook.mu.
type contactState struct {
	friends map[string]friendRec
	in      map[string]requestRec // sender → request to this user
	out     map[string]requestRec // target → this user's request
	blocks  map[string]int64      // blocked uid → when
}

func newContactState() *contactState {
	return &contactState{friends: map[string]friendRec{}, in: map[string]requestRec{},
		out: map[string]requestRec{}, blocks: map[string]int64{}}
}

// contactBook is the core's contacts cache.
type contactBook struct {
	mu     sync.Mutex               // leaf: guards states and every contactState
	states map[string]*contactState // userKey → loaded side
	apps   sync.Map                 // app id → *appSettingsRec (immutable; replaced under settingsMu)
	// settingsMu serialises changes of an app's settings record.
	settingsMu sync.Mutex
	locks      [64]sync.Mutex // striped by pair: a change to one pair's records
}

func contactKey(app, uid, peer string) []byte {
	k := make([]byte, 0, len(app)+len(uid)+len(peer)+2)
	k = append(k, app...)
	k = append(k, 0)
	k = append(k, uid...)
	k = append(k, 0)
	return append(k, peer...)
}

func (b *contactBook) stripe(app, a, x string) int {
	k := pairKey(app, a, x)
	h := uint32(2166136261)
	for i := 0; i < len(k); i++ {
		h = (h ^ uint32(k[i])) * 16777619
	}
	return int(h % uint32(len(b.locks)))
}

// lockPairs locks the stripes of every pair (app, p[0], p[1]) in ascending
// order (no deadlock with one-stripe holders) and returns the unlock.
func (b *contactBook) lockPairs(app string, pairs [][2]string) func() {
	var idx []int
	seen := map[int]bool{}
	for _, p := range pairs {
		i := b.stripe(app, p[0], p[1])
		if !seen[i] {
			seen[i] = true
			idx = append(idx, i)
		}
	}
	sort.Ints(idx)
	for _, i := range idx {
		b.locks[i].Lock()
	}
	return func() {
		for j := len(idx) - 1; j >= 0; j-- {
			b.locks[idx[j]].Unlock()
		}
	}
}

// cachedContacts returns a loaded side, or nil.
func (c *Core) cachedContacts(app, uid string) *contactState {
	b := &c.contacts
	b.mu.Lock()
	st := b.states[userKey(app, uid)]
	b.mu.Unlock()
	return st
}

// contactsOf returns uid's side, loading it from the store once.
func (c *Core) contactsOf(ctx context.Context, app, uid string) (*contactState, error) {
	if st := c.cachedContacts(app, uid); st != nil {
		return st, nil
	}
	gen := c.cacheGen(cacheContacts) // coherent.go
	st := newContactState()
	prefix := contactKey(app, uid, "")
	for _, kind := range []string{kindFriend, kindReqIn, kindReqOut, kindBlock} {
		recs, err := c.scanRecords(ctx, kind, prefix, nil, 0, false)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			peer := string(r.Key[len(prefix):])
			switch kind {
			case kindFriend:
				var f friendRec
				if json.Unmarshal(r.Value, &f) == nil {
					st.friends[peer] = f
				}
			case kindReqIn, kindReqOut:
				var q requestRec
				if json.Unmarshal(r.Value, &q) == nil {
					if kind == kindReqIn {
						st.in[peer] = q
					} else {
						st.out[peer] = q
					}
				}
			case kindBlock:
				var bl blockRec
				if json.Unmarshal(r.Value, &bl) == nil {
					st.blocks[peer] = bl.At
				}
			}
		}
	}
	b := &c.contacts
	b.mu.Lock()
	if b.states == nil {
		b.states = map[string]*contactState{}
	}
	if old := b.states[userKey(app, uid)]; old != nil {
		st = old // loaded meanwhile: that one is the cache
	} else if !c.cacheStale(cacheContacts, gen) { // else another node changed contacts meanwhile: not cached
		b.states[userKey(app, uid)] = st
	}
	b.mu.Unlock()
	return st, nil
}

// ---- app settings

func (c *Core) cachedSettings(app string) *appSettingsRec {
	if v, ok := c.contacts.apps.Load(app); ok {
		return v.(*appSettingsRec)
	}
	return nil
}

func (c *Core) appSettings(ctx context.Context, app string) (*appSettingsRec, error) {
	if s := c.cachedSettings(app); s != nil {
		return s, nil
	}
	gen := c.cacheGen(cacheSettings) // coherent.go
	s := &appSettingsRec{AppSettings: AppSettings{Messaging: PolicyAnyone, Devices: DevicesMulti}}
	v, err := c.record(ctx, kindSettings, []byte(app))
	switch {
	case err == nil:
		if err := json.Unmarshal(v, s); err != nil {
			return nil, err
		}
		if s.Devices == "" {
			s.Devices = DevicesMulti
		}
	case !errors.Is(err, ErrNotFound):
		return nil, err
	}
	got, _ := c.contacts.apps.LoadOrStore(app, s)
	if c.cacheStale(cacheSettings, gen) {
		c.contacts.apps.CompareAndDelete(app, got) // another node changed settings meanwhile
	}
	return got.(*appSettingsRec), nil
}

// Settings returns an app's settings.
func (c *Core) Settings(ctx context.Context, app string) (AppSettings, error) {
	if _, err := c.App(ctx, app); err != nil {
		return AppSettings{}, err
	}
	s, err := c.appSettings(ctx, app)
	if err != nil {
		return AppSettings{}, err
	}
	return s.AppSettings, nil
}

// SettingsInput changes an app's settings; empty fields stay as they are.
type SettingsInput struct {
	Messaging string `json:"messaging,omitempty"`
	Devices   string `json:"devices,omitempty"`
}

// SetSettings changes an app's settings (the host's call).
func (c *Core) SetSettings(ctx context.Context, app string, in SettingsInput) (AppSettings, error) {
	if _, err := c.App(ctx, app); err != nil {
		return AppSettings{}, err
	}
	switch in.Messaging {
	case "", PolicyAnyone, PolicyFriends, PolicyHost:
	default:
		return AppSettings{}, Errf(CodeBadRequest, "unknown messaging policy \""+clip(in.Messaging, 32)+
			"\"; policies are anyone, friends, host")
	}
	if in.Devices != "" && !ValidDevices(in.Devices) {
		return AppSettings{}, Errf(CodeBadRequest, "unknown device policy \""+clip(in.Devices, 32)+
			"\"; policies are multi, single, one_per_platform")
	}
	return c.updateSettings(ctx, app, func(s *appSettingsRec) {
		if in.Messaging != "" {
			s.Messaging = in.Messaging
		}
		if in.Devices != "" {
			s.Devices = in.Devices
		}
	})
}

// updateSettings applies f to a copy of the app's settings, stores it and
// swaps the cache.
func (c *Core) updateSettings(ctx context.Context, app string, f func(*appSettingsRec)) (AppSettings, error) {
	c.contacts.settingsMu.Lock()
	defer c.contacts.settingsMu.Unlock()
	if c.cluster != nil {
		c.contacts.apps.Delete(app) // change what the store has: another node may have changed it
	}
	old, err := c.appSettings(ctx, app)
	if err != nil {
		return AppSettings{}, err
	}
	next := *old
	f(&next)
	v, _ := json.Marshal(&next)
	if err := c.writeRecords(ctx, []Record{{Kind: kindSettings, Key: []byte(app), Value: v}}, nil); err != nil {
		return AppSettings{}, err
	}
	c.contacts.apps.Store(app, &next)
	return next.AppSettings, nil
}

// markBlocks records that app has blocks (once).
func (c *Core) markBlocks(ctx context.Context, app string) error {
	s, err := c.appSettings(ctx, app)
	if err != nil || s.HasBlocks {
		return err
	}
	_, err = c.updateSettings(ctx, app, func(s *appSettingsRec) { s.HasBlocks = true })
	return err
}

// ---- the send check

// privateAllowed enforces blocks and the app's messaging policy on a
// client's private message from → to. exists says whether their private
// session exists already. With cacheOnly it returns errCacheMiss instead
// of reading the store. An app with policy anyone and no block costs one
// lock-free map read.
func (c *Core) privateAllowed(ctx context.Context, app, from, to string, exists, cacheOnly bool) error {
	s := c.cachedSettings(app)
	if s == nil {
		if cacheOnly {
			return errCacheMiss
		}
		var err error
		if s, err = c.appSettings(ctx, app); err != nil {
			return err
		}
	}
	if s.Messaging == PolicyAnyone && !s.HasBlocks {
		return nil
	}
	if s.Messaging == PolicyHost && !exists {
		return Errf(CodeForbidden, "this app lets users write only in sessions the host created")
	}
	peer := c.cachedContacts(app, to)
	if peer == nil {
		if cacheOnly {
			return errCacheMiss
		}
		var err error
		if peer, err = c.contactsOf(ctx, app, to); err != nil {
			return err
		}
	}
	c.contacts.mu.Lock()
	_, blocked := peer.blocks[from]
	_, friend := peer.friends[from]
	c.contacts.mu.Unlock()
	if blocked {
		return Errf(CodeForbidden, "\""+clip(to, 64)+"\" does not accept messages from you")
	}
	if s.Messaging == PolicyFriends && !friend {
		return Errf(CodeForbidden, "this app allows private messages only between friends; \""+clip(to, 64)+"\" is not your friend")
	}
	return nil
}

// privatePeer returns the other member of a private session.
func privatePeer(s *sess, uid string) string {
	for _, u := range s.members().users {
		if u.uid != uid {
			return u.uid
		}
	}
	return ""
}

// pairExists reports whether a and b have a private session.
func (c *Core) pairExists(ctx context.Context, app, a, b string) (bool, error) {
	if c.cachedPrivate(app, a, b) != nil {
		return true, nil
	}
	_, err := c.store.PrivateSession(ctx, app, a, b)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// groupAllowed refuses a client's group creation under PolicyHost.
func (c *Core) groupAllowed(ctx context.Context, app string) error {
	s, err := c.appSettings(ctx, app)
	if err != nil {
		return err
	}
	if s.Messaging == PolicyHost {
		return Errf(CodeForbidden, "this app lets users write only in sessions the host created")
	}
	return nil
}

// invitesAllowed applies each invitee's blocks and the app's messaging
// policy to a client putting them into a group (group_create's members,
// group_add): nobody is put into a group by a user they blocked, and under
// the friends policy only by a friend. Costs one lock-free map read for an
// app with policy anyone and no block.
func (c *Core) invitesAllowed(ctx context.Context, app, inviter string, uids []string) error {
	s, err := c.appSettings(ctx, app)
	if err != nil {
		return err
	}
	if s.Messaging == PolicyAnyone && !s.HasBlocks {
		return nil
	}
	for _, uid := range uids {
		if uid == inviter {
			continue
		}
		peer, err := c.contactsOf(ctx, app, uid)
		if err != nil {
			return err
		}
		c.contacts.mu.Lock()
		_, blocked := peer.blocks[inviter]
		_, friend := peer.friends[inviter]
		c.contacts.mu.Unlock()
		if blocked {
			return Errf(CodeForbidden, "\""+clip(uid, 64)+"\" does not accept group invitations from you")
		}
		if s.Messaging == PolicyFriends && !friend {
			return Errf(CodeForbidden, "this app lets users put only their friends into groups; \""+clip(uid, 64)+"\" is not your friend")
		}
	}
	return nil
}

// ---- events

// ContactEvent is the `contact` event: a change between two users. From is
// who made it ("" for the host's import), To the other user.
type ContactEvent struct {
	Op      string `json:"op"` // request, accept, refuse, cancel, delete, remark, block, unblock, add
	From    string `json:"from"`
	To      string `json:"to"`
	Message string `json:"message,omitempty"`
	Remark  string `json:"remark,omitempty"`
	At      int64  `json:"at"`
}

// contactEvent encodes ev once and sends it to every online device of the
// users in to.
func (c *Core) contactEvent(app string, ev ContactEvent, to ...string) {
	b := appendEvent(nil, "contact", ev)
	for _, uid := range to {
		for _, cl := range c.userRef(app, uid).online() {
			cl.reply(b)
		}
	}
	actor := ev.From
	if c.bus.active() {
		c.publish(Event{Topic: TopicContact, App: app, UID: actor, Type: ev.Op, Members: []string{ev.From, ev.To}, Detail: ev.Message})
	}
}

// ---- client actions

// contactAction runs a contacts action; ok is false for any other action.
func (c *Core) contactAction(ctx context.Context, cl *Client, r *request) (data any, err error, ok bool) {
	id := cl.id
	switch r.Action {
	case "friend_request":
		data, err = c.friendRequest(ctx, id, r.UID, r.Message)
	case "friend_accept":
		data, err = c.answerRequest(ctx, id, r.UID, true)
	case "friend_refuse":
		data, err = c.answerRequest(ctx, id, r.UID, false)
	case "friend_cancel":
		data, err = c.cancelRequest(ctx, id, r.UID)
	case "friend_delete":
		data, err = c.deleteFriend(ctx, id, r.UID)
	case "friend_remark":
		data, err = c.setRemark(ctx, id, r.UID, r.Remark)
	case "friends":
		data, err = c.friendsPage(ctx, id, r.Cursor, r.Limit)
	case "friend_requests":
		data, err = c.pendingRequests(ctx, id)
	case "block":
		data, err = c.block(ctx, id, r.UID)
	case "unblock":
		data, err = c.unblock(ctx, id, r.UID)
	case "blocks":
		data, err = c.blocksPage(ctx, id, r.Cursor, r.Limit)
	default:
		return nil, nil, false
	}
	return data, err, true
}

// otherUser checks the uid an action names: given, not the caller, an
// existing user of the app.
func (c *Core) otherUser(ctx context.Context, id Identity, uid, what string) error {
	if uid == "" {
		return Errf(CodeBadRequest, "missing uid: "+what)
	}
	if uid == id.UID {
		return Errf(CodeBadRequest, "you cannot "+strings.TrimPrefix(what, "whom to ")+" yourself")
	}
	_, err := c.User(ctx, id.App, uid)
	return err
}

// pair loads both sides of (a, b) and locks their stripe; the caller
// defers the returned unlock.
func (c *Core) pair(ctx context.Context, app, a, b string) (sa, sb *contactState, unlock func(), err error) {
	unlock = c.contacts.lockPairs(app, [][2]string{{a, b}})
	if sa, err = c.contactsOf(ctx, app, a); err == nil {
		sb, err = c.contactsOf(ctx, app, b)
	}
	if err != nil {
		unlock()
		return nil, nil, nil, err
	}
	return sa, sb, unlock, nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("chat: encode record: " + err.Error())
	}
	return b
}

// RequestView is a pending friend request.
type RequestView struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Message  string `json:"message,omitempty"`
	At       int64  `json:"at"`
	Nickname string `json:"nickname,omitempty"` // the other user's
	Avatar   string `json:"avatar,omitempty"`
}

func (c *Core) friendRequest(ctx context.Context, id Identity, to, msg string) (*RequestView, error) {
	if err := c.otherUser(ctx, id, to, "whom to send a friend request"); err != nil {
		return nil, err
	}
	if len(msg) > maxRequestMessage {
		return nil, Errf(CodeTooLarge, "a friend request's message is at most 256 bytes")
	}
	if !utf8.ValidString(msg) {
		return nil, Errf(CodeBadRequest, "message is not valid UTF-8")
	}
	me, them, unlock, err := c.pair(ctx, id.App, id.UID, to)
	if err != nil {
		return nil, err
	}
	defer unlock()
	c.contacts.mu.Lock()
	_, friends := me.friends[to]
	_, blocked := them.blocks[id.UID]
	_, blocking := me.blocks[to]
	_, sent := me.out[to]
	_, received := me.in[to]
	c.contacts.mu.Unlock()
	switch {
	case friends:
		return nil, Errf(CodeConflict, "\""+clip(to, 64)+"\" is already your friend")
	case blocked:
		return nil, Errf(CodeForbidden, "\""+clip(to, 64)+"\" does not accept friend requests from you")
	case blocking:
		return nil, Errf(CodeConflict, "you have blocked \""+clip(to, 64)+"\"; unblock first")
	case sent:
		return nil, Errf(CodeConflict, "your friend request to \""+clip(to, 64)+"\" is already pending")
	case received:
		return nil, Errf(CodeConflict, "\""+clip(to, 64)+"\" has already sent you a friend request: accept it with friend_accept")
	}
	q := requestRec{Message: msg, At: c.nowMS()}
	v := mustJSON(q)
	if err := c.writeRecords(ctx, []Record{
		{Kind: kindReqIn, Key: contactKey(id.App, to, id.UID), Value: v},
		{Kind: kindReqOut, Key: contactKey(id.App, id.UID, to), Value: v},
	}, nil); err != nil {
		return nil, err
	}
	c.contacts.mu.Lock()
	me.out[to] = q
	them.in[id.UID] = q
	c.contacts.mu.Unlock()
	c.contactEvent(id.App, ContactEvent{Op: "request", From: id.UID, To: to, Message: msg, At: q.At}, id.UID, to)
	return &RequestView{From: id.UID, To: to, Message: msg, At: q.At}, nil
}

// answerRequest accepts or refuses the request from `from` to the caller.
func (c *Core) answerRequest(ctx context.Context, id Identity, from string, accept bool) (any, error) {
	verb := "whose friend request to refuse"
	if accept {
		verb = "whose friend request to accept"
	}
	if from == "" {
		return nil, Errf(CodeBadRequest, "missing uid: "+verb)
	}
	if from == id.UID {
		return nil, Errf(CodeBadRequest, "you cannot answer a friend request to yourself")
	}
	me, them, unlock, err := c.pair(ctx, id.App, id.UID, from)
	if err != nil {
		return nil, err
	}
	defer unlock()
	c.contacts.mu.Lock()
	_, ok := me.in[from]
	c.contacts.mu.Unlock()
	if !ok {
		return nil, Errf(CodeNotFound, "no pending friend request from \""+clip(from, 64)+"\"")
	}
	now := c.nowMS()
	dels := []RecordKey{{Kind: kindReqIn, Key: contactKey(id.App, id.UID, from)},
		{Kind: kindReqOut, Key: contactKey(id.App, from, id.UID)}}
	var puts []Record
	f := friendRec{Since: now}
	if accept {
		// A request the accepter had sent the other way goes too.
		dels = append(dels, RecordKey{Kind: kindReqIn, Key: contactKey(id.App, from, id.UID)},
			RecordKey{Kind: kindReqOut, Key: contactKey(id.App, id.UID, from)})
		puts = []Record{{Kind: kindFriend, Key: contactKey(id.App, id.UID, from), Value: mustJSON(f)},
			{Kind: kindFriend, Key: contactKey(id.App, from, id.UID), Value: mustJSON(f)}}
	}
	if err := c.writeRecords(ctx, puts, dels); err != nil {
		return nil, err
	}
	c.contacts.mu.Lock()
	delete(me.in, from)
	delete(them.out, id.UID)
	if accept {
		delete(me.out, from)
		delete(them.in, id.UID)
		me.friends[from] = f
		them.friends[id.UID] = f
	}
	c.contacts.mu.Unlock()
	op := "refuse"
	if accept {
		op = "accept"
	}
	c.contactEvent(id.App, ContactEvent{Op: op, From: id.UID, To: from, At: now}, id.UID, from)
	return ContactEvent{Op: op, From: id.UID, To: from, At: now}, nil
}

func (c *Core) cancelRequest(ctx context.Context, id Identity, to string) (any, error) {
	if to == "" {
		return nil, Errf(CodeBadRequest, "missing uid: whose friend request to cancel")
	}
	me, them, unlock, err := c.pair(ctx, id.App, id.UID, to)
	if err != nil {
		return nil, err
	}
	defer unlock()
	c.contacts.mu.Lock()
	_, ok := me.out[to]
	c.contacts.mu.Unlock()
	if !ok {
		return nil, Errf(CodeNotFound, "no pending friend request of yours to \""+clip(to, 64)+"\"")
	}
	if err := c.writeRecords(ctx, nil, []RecordKey{{Kind: kindReqOut, Key: contactKey(id.App, id.UID, to)},
		{Kind: kindReqIn, Key: contactKey(id.App, to, id.UID)}}); err != nil {
		return nil, err
	}
	c.contacts.mu.Lock()
	delete(me.out, to)
	delete(them.in, id.UID)
	c.contacts.mu.Unlock()
	ev := ContactEvent{Op: "cancel", From: id.UID, To: to, At: c.nowMS()}
	c.contactEvent(id.App, ev, id.UID, to)
	return ev, nil
}

func (c *Core) deleteFriend(ctx context.Context, id Identity, uid string) (any, error) {
	if uid == "" {
		return nil, Errf(CodeBadRequest, "missing uid: which friend to delete")
	}
	me, them, unlock, err := c.pair(ctx, id.App, id.UID, uid)
	if err != nil {
		return nil, err
	}
	defer unlock()
	c.contacts.mu.Lock()
	_, ok := me.friends[uid]
	c.contacts.mu.Unlock()
	if !ok {
		return nil, Errf(CodeNotFound, "\""+clip(uid, 64)+"\" is not your friend")
	}
	if err := c.writeRecords(ctx, nil, []RecordKey{{Kind: kindFriend, Key: contactKey(id.App, id.UID, uid)},
		{Kind: kindFriend, Key: contactKey(id.App, uid, id.UID)}}); err != nil {
		return nil, err
	}
	c.contacts.mu.Lock()
	delete(me.friends, uid)
	delete(them.friends, id.UID)
	c.contacts.mu.Unlock()
	ev := ContactEvent{Op: "delete", From: id.UID, To: uid, At: c.nowMS()}
	c.contactEvent(id.App, ev, id.UID, uid)
	return ev, nil
}

func (c *Core) setRemark(ctx context.Context, id Identity, uid, remark string) (any, error) {
	if uid == "" {
		return nil, Errf(CodeBadRequest, "missing uid: which friend to give a remark")
	}
	if len(remark) > maxRemark {
		return nil, Errf(CodeTooLarge, "a remark is at most 64 bytes")
	}
	if !utf8.ValidString(remark) {
		return nil, Errf(CodeBadRequest, "remark is not valid UTF-8")
	}
	me, _, unlock, err := c.pair(ctx, id.App, id.UID, uid)
	if err != nil {
		return nil, err
	}
	defer unlock()
	c.contacts.mu.Lock()
	f, ok := me.friends[uid]
	c.contacts.mu.Unlock()
	if !ok {
		return nil, Errf(CodeNotFound, "\""+clip(uid, 64)+"\" is not your friend")
	}
	f.Remark = remark
	if err := c.writeRecords(ctx, []Record{{Kind: kindFriend, Key: contactKey(id.App, id.UID, uid), Value: mustJSON(f)}}, nil); err != nil {
		return nil, err
	}
	c.contacts.mu.Lock()
	me.friends[uid] = f
	c.contacts.mu.Unlock()
	ev := ContactEvent{Op: "remark", From: id.UID, To: uid, Remark: remark, At: c.nowMS()}
	c.contactEvent(id.App, ev, id.UID) // the caller's devices only
	return ev, nil
}

func (c *Core) block(ctx context.Context, id Identity, uid string) (any, error) {
	if err := c.otherUser(ctx, id, uid, "whom to block"); err != nil {
		return nil, err
	}
	if err := c.markBlocks(ctx, id.App); err != nil {
		return nil, err
	}
	me, them, unlock, err := c.pair(ctx, id.App, id.UID, uid)
	if err != nil {
		return nil, err
	}
	defer unlock()
	c.contacts.mu.Lock()
	_, already := me.blocks[uid]
	c.contacts.mu.Unlock()
	if already {
		return nil, Errf(CodeConflict, "\""+clip(uid, 64)+"\" is already blocked")
	}
	now := c.nowMS()
	// Pending requests between the two go: a blocked user's request
	// must not wait in the list.
	dels := []RecordKey{
		{Kind: kindReqIn, Key: contactKey(id.App, id.UID, uid)}, {Kind: kindReqOut, Key: contactKey(id.App, uid, id.UID)},
		{Kind: kindReqIn, Key: contactKey(id.App, uid, id.UID)}, {Kind: kindReqOut, Key: contactKey(id.App, id.UID, uid)},
	}
	if err := c.writeRecords(ctx, []Record{{Kind: kindBlock, Key: contactKey(id.App, id.UID, uid), Value: mustJSON(blockRec{At: now})}}, dels); err != nil {
		return nil, err
	}
	c.contacts.mu.Lock()
	me.blocks[uid] = now
	delete(me.in, uid)
	delete(me.out, uid)
	delete(them.in, id.UID)
	delete(them.out, id.UID)
	c.contacts.mu.Unlock()
	ev := ContactEvent{Op: "block", From: id.UID, To: uid, At: now}
	c.contactEvent(id.App, ev, id.UID) // the blocked user is not told
	return ev, nil
}

func (c *Core) unblock(ctx context.Context, id Identity, uid string) (any, error) {
	if uid == "" {
		return nil, Errf(CodeBadRequest, "missing uid: whom to unblock")
	}
	me, _, unlock, err := c.pair(ctx, id.App, id.UID, uid)
	if err != nil {
		return nil, err
	}
	defer unlock()
	c.contacts.mu.Lock()
	_, ok := me.blocks[uid]
	c.contacts.mu.Unlock()
	if !ok {
		return nil, Errf(CodeNotFound, "\""+clip(uid, 64)+"\" is not blocked")
	}
	if err := c.writeRecords(ctx, nil, []RecordKey{{Kind: kindBlock, Key: contactKey(id.App, id.UID, uid)}}); err != nil {
		return nil, err
	}
	c.contacts.mu.Lock()
	delete(me.blocks, uid)
	c.contacts.mu.Unlock()
	ev := ContactEvent{Op: "unblock", From: id.UID, To: uid, At: c.nowMS()}
	c.contactEvent(id.App, ev, id.UID)
	return ev, nil
}

// ---- lists

// FriendView is one friend as the user sees them.
type FriendView struct {
	UID      string `json:"uid"`
	Nickname string `json:"nickname"`
	Avatar   string `json:"avatar,omitempty"`
	Remark   string `json:"remark,omitempty"`
	Since    int64  `json:"since"`
	Online   bool   `json:"online"`
}

type friendsReply struct {
	Friends []FriendView `json:"friends"`
	// NextCursor continues the list (the `cursor` of the next call); empty
	// at the end.
	NextCursor string `json:"next_cursor,omitempty"`
}

// sortedAfter returns the keys of m after cursor, ascending, at most limit,
// and whether more remain.
func sortedAfter[V any](m map[string]V, cursor string, limit int) ([]string, bool) {
	keys := make([]string, 0, len(m))
	for k := range m {
		if k > cursor {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if len(keys) > limit {
		return keys[:limit], true
	}
	return keys, false
}

func contactLimit(limit int) int {
	if limit <= 0 {
		return defContactPage
	}
	return min(limit, maxContactPage)
}

func (c *Core) friendsPage(ctx context.Context, id Identity, cursor string, limit int) (*friendsReply, error) {
	me, err := c.contactsOf(ctx, id.App, id.UID)
	if err != nil {
		return nil, err
	}
	c.contacts.mu.Lock()
	keys, more := sortedAfter(me.friends, cursor, contactLimit(limit))
	fs := make([]FriendView, len(keys))
	for i, k := range keys {
		f := me.friends[k]
		fs[i] = FriendView{UID: k, Remark: f.Remark, Since: f.Since}
	}
	c.contacts.mu.Unlock()
	for i := range fs {
		if u, err := c.User(ctx, id.App, fs[i].UID); err == nil {
			fs[i].Nickname, fs[i].Avatar = u.Nickname, u.Avatar
		}
		fs[i].Online = c.visibleOnline(ctx, id.App, id.UID, fs[i].UID)
	}
	out := &friendsReply{Friends: fs}
	if more && len(fs) > 0 {
		out.NextCursor = fs[len(fs)-1].UID
	}
	return out, nil
}

// visibleOnline reports whether viewer may see uid online: uid has a
// device online, does not hide presence and has not blocked viewer.
func (c *Core) visibleOnline(ctx context.Context, app, viewer, uid string) bool {
	if u := c.lookupUser(app, uid); u == nil || len(u.online()) == 0 {
		return false
	}
	v, err := c.presenceOf(ctx, app, viewer, uid)
	return err == nil && v.Online
}

type requestsReply struct {
	Incoming []RequestView `json:"incoming"`
	Outgoing []RequestView `json:"outgoing"`
	// Truncated: a direction had more than 500 requests; the newest are
	// listed.
	Truncated bool `json:"truncated,omitempty"`
}

func (c *Core) pendingRequests(ctx context.Context, id Identity) (*requestsReply, error) {
	me, err := c.contactsOf(ctx, id.App, id.UID)
	if err != nil {
		return nil, err
	}
	out := &requestsReply{Incoming: []RequestView{}, Outgoing: []RequestView{}}
	c.contacts.mu.Lock()
	for from, q := range me.in {
		out.Incoming = append(out.Incoming, RequestView{From: from, To: id.UID, Message: q.Message, At: q.At})
	}
	for to, q := range me.out {
		out.Outgoing = append(out.Outgoing, RequestView{From: id.UID, To: to, Message: q.Message, At: q.At})
	}
	c.contacts.mu.Unlock()
	for _, l := range []*[]RequestView{&out.Incoming, &out.Outgoing} {
		sort.Slice(*l, func(i, j int) bool {
			a, b := (*l)[i], (*l)[j]
			if a.At != b.At {
				return a.At > b.At
			}
			return a.From+a.To < b.From+b.To
		})
		if len(*l) > maxRequestsListed {
			*l = (*l)[:maxRequestsListed]
			out.Truncated = true
		}
		for i := range *l {
			other := (*l)[i].From
			if other == id.UID {
				other = (*l)[i].To
			}
			if u, err := c.User(ctx, id.App, other); err == nil {
				(*l)[i].Nickname, (*l)[i].Avatar = u.Nickname, u.Avatar
			}
		}
	}
	return out, nil
}

// BlockView is one blocked user.
type BlockView struct {
	UID string `json:"uid"`
	At  int64  `json:"at"`
}

type blocksReply struct {
	Blocks     []BlockView `json:"blocks"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

func (c *Core) blocksPage(ctx context.Context, id Identity, cursor string, limit int) (*blocksReply, error) {
	me, err := c.contactsOf(ctx, id.App, id.UID)
	if err != nil {
		return nil, err
	}
	c.contacts.mu.Lock()
	keys, more := sortedAfter(me.blocks, cursor, contactLimit(limit))
	out := &blocksReply{Blocks: make([]BlockView, len(keys))}
	for i, k := range keys {
		out.Blocks[i] = BlockView{UID: k, At: me.blocks[k]}
	}
	c.contacts.mu.Unlock()
	if more && len(keys) > 0 {
		out.NextCursor = keys[len(keys)-1]
	}
	return out, nil
}

// ---- the host's import

// ContactPair names two users of an app: UID's side of a relation with
// Peer. Remark is UID's remark for Peer (friends only).
type ContactPair struct {
	UID    string `json:"uid"`
	Peer   string `json:"peer"`
	Remark string `json:"remark,omitempty"`
}

// ContactImport is the host's bulk change of its users' contacts, applied
// in one commit in this order: Unfriend, Unblock, Friends, Block. Friends
// and Unfriend are mutual (both sides); Block and Unblock are UID's side.
type ContactImport struct {
	Friends  []ContactPair `json:"friends,omitempty"`
	Unfriend []ContactPair `json:"unfriend,omitempty"`
	Block    []ContactPair `json:"block,omitempty"`
	Unblock  []ContactPair `json:"unblock,omitempty"`
}

// ContactImportResult counts what changed (pairs already as asked are not
// counted).
type ContactImportResult struct {
	Friended   int `json:"friended"`
	Unfriended int `json:"unfriended"`
	Blocked    int `json:"blocked"`
	Unblocked  int `json:"unblocked"`
}

// ImportContacts applies a host's bulk contacts change atomically: every
// pair is checked first (both users exist, not the same uid), then all of
// it is one commit. Online users get `contact` events (from "", the host).
func (c *Core) ImportContacts(ctx context.Context, app string, in ContactImport) (ContactImportResult, error) {
	var res ContactImportResult
	if _, err := c.App(ctx, app); err != nil {
		return res, err
	}
	lists := []struct {
		name  string
		pairs []ContactPair
	}{{"unfriend", in.Unfriend}, {"unblock", in.Unblock}, {"friends", in.Friends}, {"block", in.Block}}
	total := 0
	var pairs [][2]string
	users := map[string]bool{}
	for _, l := range lists {
		total += len(l.pairs)
		for i, p := range l.pairs {
			at := l.name + "[" + itoa(uint64(i)) + "]"
			if p.UID == "" || p.Peer == "" {
				return res, Errf(CodeBadRequest, at+": uid and peer are required")
			}
			if p.UID == p.Peer {
				return res, Errf(CodeBadRequest, at+": uid and peer are the same user \""+clip(p.UID, 64)+"\"")
			}
			if len(p.Remark) > maxRemark || !utf8.ValidString(p.Remark) {
				return res, Errf(CodeBadRequest, at+": remark must be at most 64 bytes of UTF-8")
			}
			users[p.UID], users[p.Peer] = true, true
			pairs = append(pairs, [2]string{p.UID, p.Peer})
		}
	}
	if total == 0 {
		return res, Errf(CodeBadRequest, "nothing to import: give friends, unfriend, block or unblock")
	}
	if total > maxImport {
		return res, Errf(CodeTooLarge, "at most 10000 pairs in one import; split it")
	}
	for uid := range users {
		if _, err := c.User(ctx, app, uid); err != nil {
			return res, err
		}
	}
	if len(in.Block) > 0 {
		if err := c.markBlocks(ctx, app); err != nil {
			return res, err
		}
	}
	unlock := c.contacts.lockPairs(app, pairs)
	defer unlock()
	st := map[string]*contactState{}
	for uid := range users {
		s, err := c.contactsOf(ctx, app, uid)
		if err != nil {
			return res, err
		}
		st[uid] = s
	}
	now := c.nowMS()
	// Work on copies, so that the cache changes only after the commit.
	type change struct {
		op      string
		a, b    string
		f       friendRec
		blocked bool
	}
	var changes []change
	var puts []Record
	var dels []RecordKey
	c.contacts.mu.Lock()
	friendNow := func(a, b string) bool { _, ok := st[a].friends[b]; return ok }
	blockNow := func(a, b string) bool { _, ok := st[a].blocks[b]; return ok }
	// Simulate in order on a shadow of the relations the import touches.
	shadowF := map[[2]string]bool{}
	shadowB := map[[2]string]bool{}
	isF := func(a, b string) bool {
		if v, ok := shadowF[[2]string{a, b}]; ok {
			return v
		}
		return friendNow(a, b)
	}
	isB := func(a, b string) bool {
		if v, ok := shadowB[[2]string{a, b}]; ok {
			return v
		}
		return blockNow(a, b)
	}
	for _, p := range in.Unfriend {
		if isF(p.UID, p.Peer) {
			shadowF[[2]string{p.UID, p.Peer}], shadowF[[2]string{p.Peer, p.UID}] = false, false
			changes = append(changes, change{op: "delete", a: p.UID, b: p.Peer})
			res.Unfriended++
		}
	}
	for _, p := range in.Unblock {
		if isB(p.UID, p.Peer) {
			shadowB[[2]string{p.UID, p.Peer}] = false
			changes = append(changes, change{op: "unblock", a: p.UID, b: p.Peer})
			res.Unblocked++
		}
	}
	for _, p := range in.Friends {
		was := isF(p.UID, p.Peer)
		f := friendRec{Since: now, Remark: p.Remark}
		if v, touched := shadowF[[2]string{p.UID, p.Peer}]; !touched || v {
			if old, ok := st[p.UID].friends[p.Peer]; ok {
				f.Since = old.Since // already friends: since then
			}
		}
		shadowF[[2]string{p.UID, p.Peer}], shadowF[[2]string{p.Peer, p.UID}] = true, true
		changes = append(changes, change{op: "add", a: p.UID, b: p.Peer, f: f})
		if !was {
			res.Friended++
		}
	}
	for _, p := range in.Block {
		if !isB(p.UID, p.Peer) {
			shadowB[[2]string{p.UID, p.Peer}] = true
			changes = append(changes, change{op: "block", a: p.UID, b: p.Peer})
			res.Blocked++
		}
	}
	c.contacts.mu.Unlock()
	c.contacts.mu.Lock()
	pending := func(a, b string) bool { // a request either way between a and b
		_, x := st[a].in[b]
		_, y := st[a].out[b]
		return x || y
	}
	for _, ch := range changes {
		if (ch.op == "add" || ch.op == "block") && pending(ch.a, ch.b) {
			dels = append(dels, RecordKey{Kind: kindReqIn, Key: contactKey(app, ch.a, ch.b)},
				RecordKey{Kind: kindReqOut, Key: contactKey(app, ch.b, ch.a)},
				RecordKey{Kind: kindReqIn, Key: contactKey(app, ch.b, ch.a)},
				RecordKey{Kind: kindReqOut, Key: contactKey(app, ch.a, ch.b)})
		}
	}
	c.contacts.mu.Unlock()
	for _, ch := range changes {
		switch ch.op {
		case "delete":
			dels = append(dels, RecordKey{Kind: kindFriend, Key: contactKey(app, ch.a, ch.b)},
				RecordKey{Kind: kindFriend, Key: contactKey(app, ch.b, ch.a)})
		case "unblock":
			dels = append(dels, RecordKey{Kind: kindBlock, Key: contactKey(app, ch.a, ch.b)})
		}
	}
	// Puts after deletes in the journal's order would be the Store's
	// business; keep them disjoint instead: a key put here is not deleted.
	putKeys := map[string]bool{}
	c.contacts.mu.Lock()
	for _, ch := range changes {
		switch ch.op {
		case "add":
			other := friendRec{Since: ch.f.Since}
			if old, ok := st[ch.b].friends[ch.a]; ok {
				other = old
			}
			puts = append(puts, Record{Kind: kindFriend, Key: contactKey(app, ch.a, ch.b), Value: mustJSON(ch.f)},
				Record{Kind: kindFriend, Key: contactKey(app, ch.b, ch.a), Value: mustJSON(other)})
		case "block":
			puts = append(puts, Record{Kind: kindBlock, Key: contactKey(app, ch.a, ch.b), Value: mustJSON(blockRec{At: now})})
		}
	}
	c.contacts.mu.Unlock()
	for _, p := range puts {
		putKeys[p.Kind+"\x01"+string(p.Key)] = true
	}
	kept := dels[:0]
	for _, d := range dels {
		if !putKeys[d.Kind+"\x01"+string(d.Key)] {
			kept = append(kept, d)
		}
	}
	// Later puts of the same key win: keep the last.
	if err := c.writeRecords(ctx, dedupePuts(puts), kept); err != nil {
		return res, err
	}
	c.contacts.mu.Lock()
	for _, ch := range changes {
		a, b := st[ch.a], st[ch.b]
		switch ch.op {
		case "delete":
			delete(a.friends, ch.b)
			delete(b.friends, ch.a)
		case "unblock":
			delete(a.blocks, ch.b)
		case "add", "block":
			delete(a.in, ch.b)
			delete(a.out, ch.b)
			delete(b.in, ch.a)
			delete(b.out, ch.a)
			if ch.op == "block" {
				a.blocks[ch.b] = now
				break
			}
			if _, ok := b.friends[ch.a]; !ok {
				b.friends[ch.a] = friendRec{Since: ch.f.Since}
			}
			a.friends[ch.b] = ch.f
		}
	}
	c.contacts.mu.Unlock()
	for _, ch := range changes {
		ev := ContactEvent{Op: ch.op, To: ch.b, Remark: ch.f.Remark, At: now}
		if ch.op == "block" || ch.op == "unblock" {
			ev.From = "" // the host
			c.contactEventAs(app, ev, ch.a, ch.a)
			continue
		}
		c.contactEventAs(app, ev, ch.a, ch.a, ch.b)
	}
	return res, nil
}

// contactEventAs sends a host-made change: the event's From is "" and the
// stream's actor is subject.
func (c *Core) contactEventAs(app string, ev ContactEvent, subject string, to ...string) {
	ev.From = ""
	b := appendEvent(nil, "contact", struct {
		ContactEvent
		UID string `json:"uid"`
	}{ev, subject})
	for _, uid := range to {
		for _, cl := range c.userRef(app, uid).online() {
			cl.reply(b)
		}
	}
	if c.bus.active() {
		c.publish(Event{Topic: TopicContact, App: app, UID: subject, Type: ev.Op, Members: []string{subject, ev.To}, Detail: "host"})
	}
}

// dedupePuts keeps the last put of each key, in first-seen order.
func dedupePuts(puts []Record) []Record {
	last := map[string]int{}
	for i, p := range puts {
		last[p.Kind+"\x01"+string(p.Key)] = i
	}
	out := puts[:0:0]
	for i, p := range puts {
		if last[p.Kind+"\x01"+string(p.Key)] == i {
			out = append(out, p)
		}
	}
	return out
}

// clientPrivateCheck is privateAllowed for a client naming a uid: it
// finds out whether their private session exists first.
func (c *Core) clientPrivateCheck(ctx context.Context, app, from, to string) error {
	if from == to {
		return nil // openPrivate answers
	}
	if s := c.cachedSettings(app); s != nil && s.Messaging == PolicyAnyone && !s.HasBlocks {
		return nil
	}
	exists, err := c.pairExists(ctx, app, from, to)
	if err != nil {
		return err
	}
	return c.privateAllowed(ctx, app, from, to, exists, false)
}
