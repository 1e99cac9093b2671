package chat

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"strings"
)

// The session list: a user's sessions as pages (cursor), searchable by a
// keyword, with the user's own flags on each: pinned (a rank), muted,
// hidden.
//
// The flags are records, one per (user, session) that has any:
//
//	sl.flags  app\x00uid\x00<session id, 8 bytes big-endian> → sessFlags
//
// rather than fields of the Member record: few sessions of a user carry
// flags, the list reads them all with one prefix scan, and the Member
// encoding (read and written on the message path: read marks) stays as
// it is. A hidden session stays hidden while its last seq is the one it
// had when hidden, so the next message brings it back with no write.

const kindSessFlags = "sl.flags"

// maxKeyword caps a session-list search keyword, in bytes.
const maxKeyword = 64

var sessionListActions = []string{"session_pin", "session_unpin", "session_mute", "session_unmute", "session_hide", "session_show"}

func init() { Actions = append(Actions, sessionListActions...) }

type sessFlags struct {
	Rank     int    `json:"rank,omitempty"`
	Muted    bool   `json:"muted,omitempty"`
	Hidden   bool   `json:"hidden,omitempty"`
	HiddenAt uint64 `json:"hidden_at,omitempty"` // the last seq when hidden
}

// listFields are the session view's fields that the session list adds.
type listFields struct {
	PeerNickname string `json:"peer_nickname,omitempty"` // private: the other user's
	PeerAvatar   string `json:"peer_avatar,omitempty"`
	PeerRemark   string `json:"peer_remark,omitempty"`  // private: your remark for the peer, if a friend
	MemberCount  int    `json:"member_count,omitempty"` // group
	Rank         int    `json:"rank,omitempty"`         // pinned: higher first
	Muted        bool   `json:"muted,omitempty"`
}

func flagsKey(app, uid string, sid SessionID) []byte {
	k := contactKey(app, uid, "")
	return binary.BigEndian.AppendUint64(k, uint64(sid))
}

// sessionFlags reads all of a user's session flags.
func (c *Core) sessionFlags(ctx context.Context, app, uid string) (map[SessionID]sessFlags, error) {
	prefix := contactKey(app, uid, "")
	recs, err := c.scanRecords(ctx, kindSessFlags, prefix, nil, 0, false)
	if err != nil {
		return nil, err
	}
	out := make(map[SessionID]sessFlags, len(recs))
	for _, r := range recs {
		if len(r.Key) != len(prefix)+8 {
			continue
		}
		var f sessFlags
		if json.Unmarshal(r.Value, &f) == nil {
			out[SessionID(binary.BigEndian.Uint64(r.Key[len(prefix):]))] = f
		}
	}
	return out, nil
}

// fillListFields adds the peer's name, the member count and the caller's
// flags to a session view.
func (c *Core) fillListFields(ctx context.Context, id Identity, v *SessionView, f sessFlags) {
	v.Rank, v.Muted = f.Rank, f.Muted
	switch v.Kind {
	case KindPrivate.String():
		if u, err := c.User(ctx, id.App, v.Peer); err == nil {
			v.PeerNickname, v.PeerAvatar = u.Nickname, u.Avatar
		}
		if st, err := c.contactsOf(ctx, id.App, id.UID); err == nil {
			c.contacts.mu.Lock()
			v.PeerRemark = st.friends[v.Peer].Remark
			c.contacts.mu.Unlock()
		}
	case KindGroup.String():
		if s, err := c.session(ctx, id.App, v.ID); err == nil {
			v.MemberCount = len(s.members().users)
		}
	}
}

// sessionPos is a session's place in the list: pinned first (higher rank
// first), then the most recently active, then the newest id.
type sessionPos struct {
	rank int
	at   int64
	id   SessionID
}

func posOf(v *SessionView) sessionPos {
	return sessionPos{rank: v.Rank, at: max(v.LastAt, v.CreatedAt), id: v.ID}
}

// before reports whether p comes before q in the list.
func (p sessionPos) before(q sessionPos) bool {
	if p.rank != q.rank {
		return p.rank > q.rank
	}
	if p.at != q.at {
		return p.at > q.at
	}
	return p.id > q.id
}

func (p sessionPos) cursor() string {
	return strconv.Itoa(p.rank) + "." + strconv.FormatInt(p.at, 10) + "." + strconv.FormatUint(uint64(p.id), 10)
}

func parseSessionCursor(s string) (sessionPos, bool) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return sessionPos{}, false
	}
	r, e1 := strconv.Atoi(parts[0])
	at, e2 := strconv.ParseInt(parts[1], 10, 64)
	id, e3 := strconv.ParseUint(parts[2], 10, 64)
	if e1 != nil || e2 != nil || e3 != nil {
		return sessionPos{}, false
	}
	return sessionPos{rank: r, at: at, id: SessionID(id)}, true
}

// SessionListInput asks for one page of a user's session list.
type SessionListInput struct {
	Cursor  string // the next_cursor of the previous page; empty: the first page
	Limit   int    // sessions per page; 0: Config.MaxSessionsListed (also the cap)
	Keyword string // case-insensitive, in the peer's nickname, uid or your remark for them, or a group's name
}

// sessionList answers `sessions`: one page, pinned first, then the most
// recently active, without hidden sessions. unread counts the unread
// messages of every session the list holds (all pages, muted ones too;
// unread_unmuted leaves the muted out).
func (c *Core) sessionList(ctx context.Context, id Identity, in SessionListInput) (*sessionsReply, error) {
	var after sessionPos
	if in.Cursor != "" {
		var ok bool
		if after, ok = parseSessionCursor(in.Cursor); !ok {
			return nil, Errf(CodeBadRequest, "bad cursor: pass the next_cursor of the previous page as it is")
		}
	}
	if in.Limit < 0 {
		return nil, Errf(CodeBadRequest, "limit must not be negative")
	}
	if len(in.Keyword) > maxKeyword {
		return nil, Errf(CodeBadRequest, "keyword longer than 64 bytes")
	}
	kw := strings.ToLower(strings.TrimSpace(in.Keyword))
	ids, err := c.store.UserSessions(ctx, id.App, id.UID)
	if err != nil {
		return nil, err
	}
	flags, err := c.sessionFlags(ctx, id.App, id.UID)
	if err != nil {
		return nil, err
	}
	var all []*SessionView
	var unread, unmuted uint64
	for _, sid := range ids {
		v, err := c.sessionViewBase(ctx, id, sid) // mentions: for the page only, below
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				continue // left between the index read and now
			}
			return nil, err
		}
		f := flags[sid]
		if f.Hidden && v.LastSeq <= f.HiddenAt {
			continue
		}
		c.fillListFields(ctx, id, v, f)
		if kw != "" && !matchesKeyword(v, kw) {
			continue
		}
		unread += v.Unread
		if !v.Muted {
			unmuted += v.Unread
		}
		all = append(all, v)
	}
	sort.Slice(all, func(i, j int) bool { return posOf(all[i]).before(posOf(all[j])) })
	if in.Cursor != "" {
		i := sort.Search(len(all), func(i int) bool { return after.before(posOf(all[i])) })
		all = all[i:]
	}
	limit := c.cfg.MaxSessionsListed
	if in.Limit > 0 {
		limit = min(in.Limit, limit)
	}
	for _, v := range all[:min(limit, len(all))] {
		if err := c.fillMentions(ctx, id, v); err != nil {
			return nil, err
		}
	}
	out, err := c.capSessionsN(all, unread, limit)
	if err != nil {
		return nil, err
	}
	out.UnreadUnmuted = unmuted
	if n := len(out.Sessions); n > 0 && n < len(all) {
		out.NextCursor = posOf(all[n-1]).cursor()
	}
	if in.Cursor == "" && in.Keyword == "" { // the first page carries the app's broadcasts (broadcast.go)
		if out.Broadcasts, err = c.broadcastView(ctx, id); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func matchesKeyword(v *SessionView, kw string) bool {
	for _, s := range []string{v.PeerNickname, v.PeerRemark, v.Peer, v.Name} {
		if s != "" && strings.Contains(strings.ToLower(s), kw) {
			return true
		}
	}
	return false
}

// ---- flags

type flagsEvent struct {
	SessionID SessionID `json:"session_id"`
	Rank      int       `json:"rank"`
	Muted     bool      `json:"muted"`
	Hidden    bool      `json:"hidden"`
}

// setFlags changes the caller's flags of a session and tells the user's
// devices with a `session_flags` event.
func (c *Core) setFlags(ctx context.Context, id Identity, sid SessionID, change func(*sessFlags, *Session)) (any, error) {
	if _, err := c.memberSession(ctx, id, sid); err != nil {
		return nil, err
	}
	rec, err := c.store.Session(ctx, sid)
	if err != nil {
		return nil, err
	}
	// One user's flags change one at a time (read-modify-write).
	l := c.lockFor("\x05" + userKey(id.App, id.UID))
	l.Lock()
	defer l.Unlock()
	key := flagsKey(id.App, id.UID, sid)
	var f sessFlags
	v, err := c.record(ctx, kindSessFlags, key)
	switch {
	case err == nil:
		_ = json.Unmarshal(v, &f)
	case !errors.Is(err, ErrNotFound):
		return nil, err
	}
	change(&f, &rec)
	if f == (sessFlags{}) {
		err = c.writeRecords(ctx, nil, []RecordKey{{Kind: kindSessFlags, Key: key}})
	} else {
		err = c.writeRecords(ctx, []Record{{Kind: kindSessFlags, Key: key, Value: mustJSON(f)}}, nil)
	}
	if err != nil {
		return nil, err
	}
	ev := flagsEvent{SessionID: sid, Rank: f.Rank, Muted: f.Muted, Hidden: f.Hidden}
	b := appendEvent(nil, "session_flags", ev)
	for _, cl := range c.userRef(id.App, id.UID).online() {
		cl.reply(b)
	}
	return ev, nil
}

func (c *Core) sessionListAction(ctx context.Context, cl *Client, r *request) (data any, err error, ok bool) {
	id, sid := cl.id, r.SessionID
	switch r.Action {
	case "session_pin":
		rank := r.Rank
		if rank == 0 {
			rank = 1
		}
		if rank < 0 || rank > 1_000_000 {
			return nil, Errf(CodeBadRequest, "rank must be 1 to 1000000 (higher is listed first)"), true
		}
		data, err = c.setFlags(ctx, id, sid, func(f *sessFlags, _ *Session) { f.Rank = rank })
	case "session_unpin":
		data, err = c.setFlags(ctx, id, sid, func(f *sessFlags, _ *Session) { f.Rank = 0 })
	case "session_mute":
		data, err = c.setFlags(ctx, id, sid, func(f *sessFlags, _ *Session) { f.Muted = true })
	case "session_unmute":
		data, err = c.setFlags(ctx, id, sid, func(f *sessFlags, _ *Session) { f.Muted = false })
	case "session_hide":
		data, err = c.setFlags(ctx, id, sid, func(f *sessFlags, s *Session) { f.Hidden, f.HiddenAt = true, s.LastSeq })
	case "session_show":
		data, err = c.setFlags(ctx, id, sid, func(f *sessFlags, _ *Session) { f.Hidden, f.HiddenAt = false, 0 })
	default:
		return nil, nil, false
	}
	return data, err, true
}

// flagsOf reads the caller's flags of one session (zero when none or on a
// read failure: they only decorate the view).
func (c *Core) flagsOf(ctx context.Context, id Identity, sid SessionID) sessFlags {
	var f sessFlags
	if v, err := c.record(ctx, kindSessFlags, flagsKey(id.App, id.UID, sid)); err == nil {
		_ = json.Unmarshal(v, &f)
	}
	return f
}
