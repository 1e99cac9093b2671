package chat

import "context"

// Typing: a user tells the other members of a session that they are
// typing. Nothing is stored. At most one typing event per user and session
// per second is forwarded (by the core's clock); the rest are answered ok
// with "forwarded": false and go nowhere. Clients show the indicator for a
// few seconds (protocol.md says 5) unless another typing event or the
// user's message arrives.

// typingEvery is the least time between two forwarded typing events of
// one user in one session, in ms.
const typingEvery = 1000

type typingKey struct {
	u   *user
	sid SessionID
}

// TypingEvent is the `typing` event.
type TypingEvent struct {
	SessionID SessionID `json:"session_id"`
	UID       string    `json:"uid"`
}

type typingReply struct {
	Forwarded bool `json:"forwarded"`
}

func (c *Core) typing(ctx context.Context, cl *Client, sid SessionID) (any, error) {
	s, err := c.memberSession(ctx, cl.id, sid)
	if err != nil {
		return nil, err
	}
	now := c.nowMS()
	k := typingKey{u: cl.u, sid: sid}
	p := &c.presence
	p.mu.Lock()
	if p.typing == nil {
		p.typing = map[typingKey]int64{}
	}
	last, ok := p.typing[k]
	if ok && now-last < typingEvery {
		p.mu.Unlock()
		return typingReply{}, nil
	}
	p.typing[k] = now
	p.mu.Unlock()
	r := s.members()
	if s.kind == KindPrivate {
		peer := privatePeer(s, cl.id.UID)
		if err := c.privateAllowed(ctx, cl.id.App, cl.id.UID, peer, true, false); err != nil {
			return typingReply{}, nil // blocked (or not allowed): dropped silently
		}
	}
	var ev []byte
	for _, u := range r.users {
		if u == cl.u {
			continue
		}
		for _, o := range u.online() {
			if ev == nil {
				ev = appendEvent(nil, "typing", TypingEvent{SessionID: sid, UID: cl.id.UID})
			}
			o.reply(ev)
		}
	}
	return typingReply{Forwarded: true}, nil
}

// pruneTyping forgets typing times older than the limit. Called by the
// sweeper.
func (c *Core) pruneTyping() {
	now := c.nowMS()
	p := &c.presence
	p.mu.Lock()
	for k, at := range p.typing {
		if now-at >= typingEvery {
			delete(p.typing, k)
		}
	}
	p.mu.Unlock()
}
