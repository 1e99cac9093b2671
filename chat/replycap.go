package chat

import "encoding/json"

// No reply may be larger than Config.MaxReply: the transport closes a
// connection whose outbound queue passes its limit (1008), so a reply over
// it would close the connection that asked, and again on every retry. The
// session list (until it gets paging) keeps the most recently active
// sessions that fit and says truncated; history and sync pages stop early
// and say has_more, which clients already follow.

// replyOverhead is room for the reply envelope around data: reply_to (an
// id of at most 66 bytes), "ok", and the fields beside a list.
const replyOverhead = 256

// sessionsReply is the `sessions` reply: views encoded one by one, so the
// size is known while they are added.
type sessionsReply struct {
	Sessions  []json.RawMessage `json:"sessions"`
	Unread    uint64            `json:"unread"` // over all the user's sessions, listed or not
	Truncated bool              `json:"truncated,omitempty"`
	// The session list's paging and mute (sessionlist.go).
	UnreadUnmuted uint64 `json:"unread_unmuted"`
	NextCursor    string `json:"next_cursor,omitempty"`
	// Broadcasts: the app's broadcasts as this user sees them, shown in
	// their system session (broadcast.go); nil when the app has none.
	Broadcasts *BroadcastView `json:"broadcasts,omitempty"`
}

// capSessions encodes views (most recent first) until MaxSessionsListed
// views or MaxReply bytes.
func (c *Core) capSessions(views []*SessionView, unread uint64) (*sessionsReply, error) {
	return c.capSessionsN(views, unread, c.cfg.MaxSessionsListed)
}

// capSessionsN is capSessions with a page size of limit views.
func (c *Core) capSessionsN(views []*SessionView, unread uint64, limit int) (*sessionsReply, error) {
	out := &sessionsReply{Sessions: make([]json.RawMessage, 0, min(len(views), limit)), Unread: unread}
	room := c.cfg.MaxReply - replyOverhead
	for _, v := range views {
		if len(out.Sessions) == limit {
			out.Truncated = true
			break
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		if room -= len(b) + 1; room < 0 {
			out.Truncated = true
			break
		}
		out.Sessions = append(out.Sessions, b)
	}
	return out, nil
}

// messageSize bounds the encoded size of m in a page: content as stored,
// strings at their worst escaping (6 bytes a byte), and the fixed fields.
func messageSize(m *Message) int {
	return len(m.Content) + 6*(len(m.From)+len(m.Type)+len(m.CID)) + 200
}

// fitPage trims a page of messages (oldest first) to MaxReply, keeping at
// least one message so that a client paging through always advances.
// keepNewest keeps the newest end (history pages back in time); otherwise
// the oldest (sync pages forward). It reports whether it trimmed.
func (c *Core) fitPage(ms []Message, keepNewest bool) ([]Message, bool) {
	room := c.cfg.MaxReply - replyOverhead
	n := 0
	for i := range ms {
		j := i
		if keepNewest {
			j = len(ms) - 1 - i
		}
		if room -= messageSize(&ms[j]) + 1; room < 0 && n > 0 {
			break
		}
		n++
	}
	if n == len(ms) {
		return ms, false
	}
	if keepNewest {
		return ms[len(ms)-n:], true
	}
	return ms[:n], true
}

// capMembers trims the member list of a `session` reply to what fits
// MaxReply (a group may have 100,000 members), and says so.
func (c *Core) capMembers(v *SessionView) (*SessionView, error) {
	all := v.Members
	v.Members = nil
	base, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	room := c.cfg.MaxReply - replyOverhead - len(base) - len(`,"members":[],"members_truncated":true`)
	var scratch []byte
	for i, uid := range all {
		scratch = appendString(scratch[:0], uid) // encoding/json escapes the same bytes
		if room -= len(scratch) + 1; room < 0 {
			v.Members, v.MembersTruncated = all[:i], true
			return v, nil
		}
	}
	v.Members = all
	return v, nil
}
