package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
)

// Reply/quote and forward.
//
// A reply is a send with quote_seq: an earlier message of the same
// session. Its content is stored with the reference first,
//
//	{"quote":{"seq":7,"from":"alice"}, …the sender's fields…}
//
// and every reader (the live event, history, sync, the server API) gets
// it completed from the quoted message as it is now:
//
//	{"quote":{"seq":7,"from":"alice","type":"text","snippet":"see you at…"}, …}
//
// so clients render it without a lookup. The snippet is not stored: when
// the original is recalled, the quote says so ("recalled":true, snippet
// "[recalled]") and the recalled text is in no other stored message; when
// it is edited, the quote shows the new text.
//
// A forward copies messages the user can read into other sessions the
// user is in, as new messages of the user's, each marked
//
//	{"forwarded":{"from":"alice","name":"Alice","session_id":3,"seq":7}, …the original content…}

// quotePrefix starts a stored reply's content.
var quotePrefix = []byte(`{"quote":{"seq":`)

// Quote is the reference a reply carries, as readers get it.
type Quote struct {
	Seq      uint64 `json:"seq"`
	From     string `json:"from"`
	Type     string `json:"type,omitempty"`
	Snippet  string `json:"snippet,omitempty"`
	Recalled bool   `json:"recalled,omitempty"`
	Missing  bool   `json:"missing,omitempty"` // no longer stored (retention)
}

// Forwarded marks a forwarded copy.
type Forwarded struct {
	From    string    `json:"from"` // the original sender's uid ("" for a notice)
	Name    string    `json:"name"` // their nickname when forwarded
	Session SessionID `json:"session_id"`
	Seq     uint64    `json:"seq"`
}

// maxForward caps the messages and target sessions of one forward.
const (
	maxForwardMsgs    = 50
	maxForwardTargets = 10
)

// withQuote prefixes content (a JSON object) with q's fields.
func withQuote(q *Quote, content []byte) []byte {
	b, _ := json.Marshal(q)
	out := make([]byte, 0, len(b)+len(content)+12)
	out = append(out, `{"quote":`...)
	out = append(out, b...)
	rest := bytes.TrimSpace(content[1:]) // after the object's '{'
	if len(rest) > 0 && rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, rest...)
}

// splitQuote reads a stored reply's reference and returns the rest of
// its content (the fields after the quote, with the closing brace).
func splitQuote(content []byte) (Quote, []byte, bool) {
	var q Quote
	if !bytes.HasPrefix(content, quotePrefix) {
		return q, nil, false
	}
	d := json.NewDecoder(bytes.NewReader(content))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return q, nil, false
	}
	if t, err := d.Token(); err != nil || t != "quote" {
		return q, nil, false
	}
	if err := d.Decode(&q); err != nil {
		return q, nil, false
	}
	rest := bytes.TrimLeft(content[d.InputOffset():], " \t\r\n,")
	return q, rest, true
}

// quoteOf completes a reference from the quoted message as stored now.
func (c *Core) quoteOf(ctx context.Context, sid SessionID, seq uint64) (Quote, error) {
	q := Quote{Seq: seq}
	ms, err := c.store.Messages(ctx, sid, seq, seq, 1, false)
	if err != nil {
		return q, err
	}
	if len(ms) == 0 {
		q.Missing = true
		return q, nil
	}
	m := ms[0]
	q.From, q.Type = m.From, m.Type
	if m.Type == TypeRecalled {
		q.Recalled, q.Snippet = true, "[recalled]"
		return q, nil
	}
	if content, ok := splitQuoteContent(m.Content); ok {
		m.Content = content
	}
	p, e := validateContent(m.Type, m.Content, 1<<30)
	if e == nil {
		q.Snippet = p
	}
	return q, nil
}

// splitQuoteContent drops a reply's own quote from content.
func splitQuoteContent(content []byte) ([]byte, bool) {
	if _, rest, ok := splitQuote(content); ok {
		return append([]byte{'{'}, rest...), true
	}
	return content, false
}

// fillQuotes completes the quotes of a page of sid's messages (read
// paths: history, sync, the server API's history).
func (c *Core) fillQuotes(ctx context.Context, sid SessionID, ms []Message) error {
	for i := range ms {
		if !bytes.HasPrefix(ms[i].Content, quotePrefix) {
			continue
		}
		q, rest, ok := splitQuote(ms[i].Content)
		if !ok {
			continue
		}
		full, err := c.quoteOf(ctx, sid, q.Seq)
		if err != nil {
			return err
		}
		ms[i].Content = withQuote(&full, append([]byte{'{'}, rest...))
	}
	return nil
}

// sendReply is a client's send with quote_seq and/or mentions: the
// stored content holds the reference, the event the completed quote.
func (c *Core) sendReply(ctx context.Context, cl *Client, r *request) error {
	if r.SessionID == 0 {
		return Errf(CodeBadRequest, "a reply or a message with mentions needs session_id")
	}
	s, err := c.memberSession(ctx, cl.id, r.SessionID)
	if err != nil {
		return err
	}
	mentioned, e := c.checkMentions(s, cl.id.UID, r.Mentions, r.MentionAll) // mentions.go
	if e != nil {
		return e
	}
	if r.QuoteSeq == 0 {
		in := SendInput{From: cl.id.UID, Session: r.SessionID, Type: r.Type, Content: r.Content, CID: r.CID, client: true}
		o, err := c.prepareSend(ctx, cl.id.App, &in)
		if err != nil {
			return err
		}
		o.origin, o.reqID = cl, r.ID
		o.msg.Mentions, o.msg.MentionAll = mentioned, r.MentionAll
		return c.submit(ctx, o)
	}
	if bytes.Contains(r.Content, []byte(`"quote"`)) {
		return Errf(CodeBadRequest, "content.quote is set by the server; name the quoted message with quote_seq")
	}
	q, err := c.quoteOf(ctx, r.SessionID, r.QuoteSeq)
	if err != nil {
		return err
	}
	if q.Missing || q.Type == TypeOp {
		return Errf(CodeNotFound, "no message "+itoa(r.QuoteSeq)+" to quote in session "+itoa(uint64(r.SessionID)))
	}
	if _, e := validateContent(r.Type, r.Content, c.cfg.MaxContent); e != nil {
		return e
	}
	stored := withQuote(&Quote{Seq: q.Seq, From: q.From}, r.Content)
	shown := withQuote(&q, r.Content)
	in := SendInput{From: cl.id.UID, Session: r.SessionID, Type: r.Type, Content: shown, CID: r.CID, client: true}
	o, err := c.prepareSend(ctx, cl.id.App, &in)
	if err != nil {
		return err
	}
	o.origin, o.reqID = cl, r.ID
	o.msg.Mentions, o.msg.MentionAll = mentioned, r.MentionAll
	o.attach = func(_ *Message, b *Batch) {
		b.Messages[len(b.Messages)-1].Content = stored // the reference only
	}
	return c.submit(ctx, o)
}

// forwardResult answers a forward: one entry per copy, in order (for
// each target session, each message).
type forwardResult struct {
	Copies []SendResult `json:"copies"`
}

// forward copies messages seqs of r.SessionID into r.ToSessions.
func (c *Core) forward(ctx context.Context, id Identity, r *request) (any, error) {
	switch {
	case len(r.Seqs) == 0:
		return nil, Errf(CodeBadRequest, "missing seqs: which messages to forward")
	case len(r.ToSessions) == 0:
		return nil, Errf(CodeBadRequest, "missing to_sessions: where to forward")
	case len(r.Seqs) > maxForwardMsgs || len(r.ToSessions) > maxForwardTargets:
		return nil, Errf(CodeTooLarge, "at most "+strconv.Itoa(maxForwardMsgs)+" messages to "+strconv.Itoa(maxForwardTargets)+" sessions in one forward")
	}
	if e := c.mutedErr(id.App, id.UID); e != nil { // an app-level mute (moderation.go) stops forwards too
		return nil, e
	}
	if _, err := c.memberSession(ctx, id, r.SessionID); err != nil {
		return nil, err
	}
	// Every target is checked as a send there would be — membership, and
	// in a private session the peer's blocks and the app's messaging
	// policy (contacts.go), in a group its mutes — before any copy is
	// made: a forward that one target refuses copies nothing anywhere,
	// so the user is not left with copies in the targets listed first and
	// a retry does not send them twice. Each copy's send checks again.
	for _, to := range r.ToSessions {
		s, err := c.memberSession(ctx, id, to)
		if err != nil {
			return nil, err
		}
		switch s.kind {
		case KindPrivate:
			if err := c.privateAllowed(ctx, id.App, id.UID, privatePeer(s, id.UID), true, false); err != nil {
				return nil, err
			}
		case KindGroup:
			if e := c.speakCheck(s, s.members(), id.UID); e != nil {
				return nil, e
			}
		}
	}
	h, err := c.hidden(ctx, r.SessionID, id.UID)
	if err != nil {
		return nil, err
	}
	type copyOf struct {
		typ     string
		content []byte
	}
	var copies []copyOf
	names := map[string]string{}
	for _, seq := range r.Seqs {
		ms, err := c.store.Messages(ctx, r.SessionID, seq, seq, 1, false)
		if err != nil {
			return nil, err
		}
		if _, hid := h.containing(seq); len(ms) == 0 || hid {
			return nil, Errf(CodeNotFound, "no message "+itoa(seq)+" in session "+itoa(uint64(r.SessionID)))
		}
		m := ms[0]
		if e := clientSendCheck(m.Type); e != nil {
			return nil, Errf(CodeForbidden, "message "+itoa(seq)+" is a system notice; notices cannot be forwarded")
		}
		if m.Type == TypeOp || m.Type == TypeRecalled {
			return nil, Errf(CodeBadRequest, "message "+itoa(seq)+" is "+m.Type+"; it cannot be forwarded")
		}
		name, ok := names[m.From]
		if !ok && m.From != "" {
			if u, err := c.store.User(ctx, id.App, m.From); err == nil {
				name = u.Nickname
			}
			names[m.From] = name
		}
		content, _ := splitQuoteContent(m.Content)
		content = bytes.TrimSpace(content)
		if i := bytes.Index(content, []byte(`"forwarded"`)); i >= 0 {
			// A forward of a forward: keep the first origin's mark.
			copies = append(copies, copyOf{typ: m.Type, content: content})
			continue
		}
		mark, _ := json.Marshal(Forwarded{From: m.From, Name: name, Session: r.SessionID, Seq: seq})
		out := append([]byte(`{"forwarded":`), mark...)
		if rest := bytes.TrimSpace(content[1:]); len(rest) > 0 && rest[0] != '}' {
			out = append(out, ',')
			out = append(out, rest...)
		} else {
			out = append(out, '}')
		}
		copies = append(copies, copyOf{typ: m.Type, content: out})
	}
	res := forwardResult{Copies: make([]SendResult, 0, len(copies)*len(r.ToSessions))}
	for _, to := range r.ToSessions {
		for _, cp := range copies {
			sr, err := c.Send(ctx, id.App, SendInput{From: id.UID, Session: to, Type: cp.typ, Content: cp.content, client: true})
			if err != nil {
				return nil, err
			}
			res.Copies = append(res.Copies, sr)
		}
	}
	return res, nil
}
