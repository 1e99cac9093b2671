package chat

import (
	"context"
	"slices"
	"strconv"
)

// Mentions: a group message may name members (`mentions`, a list of
// uids) or everyone (`mention_all`, owners and admins only unless
// Config.MentionAllMembers). They are fields of the stored message, not
// of its content, so that no content a client writes can pass for one.
// A member's session view counts the unread messages that mention them
// (unread_mentions), so clients can show "someone mentioned you".

// maxMentions caps the uids one message mentions.
const maxMentions = 100

// mentionScan caps the unread messages a session view looks through for
// mentions: the newest this many.
const mentionScan = MaxPage

// appendMentions encodes a message's mention fields.
func appendMentions(dst []byte, m *Message) []byte {
	if len(m.Mentions) > 0 {
		dst = append(dst, `,"mentions":[`...)
		for i, uid := range m.Mentions {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, uid)
		}
		dst = append(dst, ']')
	}
	if m.MentionAll {
		dst = append(dst, `,"mention_all":true`...)
	}
	return dst
}

// checkMentions validates a send's mentions into s by from and returns
// them deduplicated.
func (c *Core) checkMentions(s *sess, from string, uids []string, all bool) ([]string, *Error) {
	if len(uids) == 0 && !all {
		return nil, nil
	}
	if s.kind != KindGroup {
		return nil, Errf(CodeBadRequest, "mentions are for groups; session "+itoa(uint64(s.id))+" is not one")
	}
	if len(uids) > maxMentions {
		return nil, Errf(CodeTooLarge, "at most "+strconv.Itoa(maxMentions)+" mentions in one message; use mention_all")
	}
	r := s.members()
	if all && !c.cfg.MentionAllMembers && r.roles[from] < RoleAdmin {
		return nil, Errf(CodeForbidden, "only the owner and admins can mention everyone")
	}
	var out []string
	for _, uid := range uids {
		if !r.has(uid) {
			return nil, Errf(CodeBadRequest, "cannot mention \""+clip(uid, 64)+"\": not a member of group "+itoa(uint64(s.id)))
		}
		if !slices.Contains(out, uid) {
			out = append(out, uid)
		}
	}
	return out, nil
}

// mentions reports whether m mentions uid (not counting uid's own).
func mentions(m *Message, uid string) bool {
	return m.From != uid && (m.MentionAll || slices.Contains(m.Mentions, uid))
}

// unreadMentions counts the messages of sid after readSeq, up to lastSeq,
// that mention uid, among the newest mentionScan of them.
func (c *Core) unreadMentions(ctx context.Context, sid SessionID, uid string, readSeq, lastSeq uint64) (uint64, error) {
	if lastSeq <= readSeq {
		return 0, nil
	}
	lo := readSeq + 1
	if lastSeq-readSeq > mentionScan {
		lo = lastSeq - mentionScan + 1
	}
	ms, err := c.store.Messages(ctx, sid, lo, lastSeq, 0, false)
	if err != nil {
		return 0, err
	}
	var n uint64
	for i := range ms {
		if mentions(&ms[i], uid) {
			n++
		}
	}
	return n, nil
}
