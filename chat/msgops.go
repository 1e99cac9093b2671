package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"time"
)

// Message operations: recall (unsend) and edit.
//
// A recall or an edit changes an earlier message in place — the stored
// message at its seq is replaced, so history returns the current version —
// and is also appended to the session as an entry of its own, type "op",
// with the next seq. That entry is how every client learns of the change:
// online members get it at once as a `recall` or `edit` event, and a client
// that was offline finds it in `sync` (it syncs by seq, and the op entry
// has a seq after what it last saw), with no second mechanism (a change log
// per session, a "changed since" query) to keep consistent with the first.
// The replaced message and the op entry are written in one commit, with
// the message.recalled or message.edited webhook event when it is wanted.
//
// Both go through the journal like a send, so a `cid` makes them
// idempotent with the same per-sender window as sends; a recall is also
// idempotent by nature (recalling a recalled message answers what the
// first recall did, duplicate: true).

const (
	// TypeOp is the type of a session's op entries (MsgOp content).
	TypeOp = "op"
	// TypeRecalled is the type a recalled message becomes (Recalled
	// content): sender, seq and time are kept, the content is gone.
	TypeRecalled = "recalled"
)

// Op names of MsgOp.Op.
const (
	OpRecall = "recall"
	OpEdit   = "edit"
)

// MsgOp is the content of an op entry, and the data of the `recall` and
// `edit` events (with session_id and op_seq added).
type MsgOp struct {
	Op  string `json:"op"`  // OpRecall or OpEdit
	Seq uint64 `json:"seq"` // the message it changes
	By  string `json:"by"`  // the uid that did it; empty: the host, over the server API
	At  int64  `json:"at"`  // unix ms
	// edit only: the message's type, its new content and how many times
	// it has now been edited.
	Type      string          `json:"type,omitempty"`
	Content   json.RawMessage `json:"content,omitempty"`
	EditCount uint32          `json:"edit_count,omitempty"`
}

// Recalled is the content of a recalled message (TypeRecalled).
type Recalled struct {
	By    string `json:"by"`     // empty: the host
	At    int64  `json:"at"`     // unix ms
	OpSeq uint64 `json:"op_seq"` // the op entry that recalled it
}

// MsgOpResult answers a recall or an edit.
type MsgOpResult struct {
	Session   SessionID `json:"session_id"`
	Seq       uint64    `json:"seq"`    // the message changed
	OpSeq     uint64    `json:"op_seq"` // its op entry
	At        int64     `json:"at"`
	EditCount uint32    `json:"edit_count,omitempty"`
	Duplicate bool      `json:"duplicate,omitempty"`
}

// Recall recalls a message as the host (server API): at any time, in any
// session of app.
func (c *Core) Recall(ctx context.Context, app string, sid SessionID, seq uint64, cid string) (*MsgOpResult, error) {
	return c.msgOp(ctx, app, "", OpRecall, sid, seq, "", nil, cid)
}

// recallAction and editAction are the client actions.
func (c *Core) recallAction(ctx context.Context, id Identity, r *request) (any, error) {
	return c.msgOp(ctx, id.App, id.UID, OpRecall, r.SessionID, r.Seq, "", nil, r.CID)
}

func (c *Core) editAction(ctx context.Context, id Identity, r *request) (any, error) {
	return c.msgOp(ctx, id.App, id.UID, OpEdit, r.SessionID, r.Seq, r.Type, r.Content, r.CID)
}

// editable lists the types an edit may change.
func editable(typ string) bool { return typ == "text" || typ == "rich" }

// msgOp recalls or edits message seq of sid as actor ("" is the host).
func (c *Core) msgOp(ctx context.Context, app, actor, opName string, sid SessionID, seq uint64, typ string, content json.RawMessage, cid string) (*MsgOpResult, error) {
	if sid == 0 {
		return nil, Errf(CodeBadRequest, "missing session_id")
	}
	if seq == 0 {
		return nil, Errf(CodeBadRequest, "missing seq: which message to "+opName)
	}
	if len(cid) > 64 {
		return nil, Errf(CodeBadRequest, "cid longer than 64 bytes")
	}
	s, err := c.session(ctx, app, sid)
	if err != nil {
		return nil, err
	}
	if actor != "" && !s.members().has(actor) {
		return nil, Errf(CodeForbidden, "not a member of session "+itoa(uint64(sid)))
	}
	if actor != "" {
		if e := writableGroup(s); e != nil { // groups_admin.go
			return nil, e
		}
	}
	if opName == OpEdit {
		if e := c.mutedErr(app, actor); e != nil { // an app-level mute (moderation.go) stops edits too
			return nil, e
		}
		if len(content) == 0 || string(content) == "null" {
			return nil, Errf(CodeBadRequest, "missing content: the message's new content")
		}
	}
	// One change to a session's messages at a time: a recall and an edit
	// of one message must not both read it before either writes it.
	s.mu.Lock()
	defer s.mu.Unlock()
	ms, err := c.store.Messages(ctx, sid, seq, seq, 1, false)
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return nil, Errf(CodeNotFound, "no message "+itoa(seq)+" in session "+itoa(uint64(sid)))
	}
	orig := ms[0]
	if orig.Type == TypeOp {
		return nil, Errf(CodeBadRequest, "message "+itoa(seq)+" is an op entry (a recall or an edit); it cannot be "+opName+"ed")
	}
	now := c.nowMS()
	role := s.members().roles[actor]
	var preview string
	var ev MsgOp
	switch opName {
	case OpRecall:
		if orig.Type == TypeRecalled {
			var rc Recalled
			_ = json.Unmarshal(orig.Content, &rc)
			return &MsgOpResult{Session: sid, Seq: seq, OpSeq: rc.OpSeq, At: rc.At, Duplicate: true}, nil
		}
		switch {
		case actor == "":
		case s.kind == KindGroup && role >= RoleAdmin:
		case orig.From == actor:
			if w := c.cfg.RecallWindow; now-orig.CreatedAt > w.Milliseconds() {
				return nil, Errf(CodeForbidden, "message "+itoa(seq)+" was sent more than "+w.String()+" ago: past the recall window")
			}
		default:
			return nil, Errf(CodeForbidden, "only the sender (within "+c.cfg.RecallWindow.String()+"), a group's owner or admins, or the host can recall message "+itoa(seq))
		}
		ev = MsgOp{Op: OpRecall, Seq: seq, By: actor, At: now}
		preview = "[recalled]"
	case OpEdit:
		switch {
		case orig.Type == TypeRecalled:
			return nil, Errf(CodeConflict, "message "+itoa(seq)+" was recalled; it cannot be edited")
		case orig.From != actor || actor == "":
			return nil, Errf(CodeForbidden, "only the sender can edit message "+itoa(seq))
		case !editable(orig.Type):
			return nil, Errf(CodeBadRequest, "only text and rich messages can be edited; message "+itoa(seq)+" is "+orig.Type)
		case typ != "" && typ != orig.Type:
			return nil, Errf(CodeBadRequest, "an edit keeps the message's type ("+orig.Type+"); got "+clip(typ, 32))
		}
		if w := c.cfg.EditWindow; now-orig.CreatedAt > w.Milliseconds() {
			return nil, Errf(CodeForbidden, "message "+itoa(seq)+" was sent more than "+w.String()+" ago: past the edit window")
		}
		p, e := validateContent(orig.Type, content, c.cfg.MaxContent)
		if e != nil {
			return nil, e
		}
		ev = MsgOp{Op: OpEdit, Seq: seq, By: actor, At: now, Type: orig.Type, Content: content, EditCount: orig.Edits + 1}
		preview = "[edited] " + p
	}
	body, err := json.Marshal(&ev)
	if err != nil {
		return nil, err
	}
	o := &op{sess: s, preview: preview, res: make(chan opResult, 1)}
	o.msg = Message{Session: sid, App: app, From: actor, Type: TypeOp, Content: body, CID: cid, CreatedAt: now}
	changed := orig
	if opName == OpRecall {
		changed.Type, changed.EditedAt, changed.Edits = TypeRecalled, 0, 0
	} else {
		changed.Content, changed.EditedAt, changed.Edits = append(json.RawMessage(nil), content...), now, ev.EditCount
	}
	o.attach = func(m *Message, b *Batch) {
		if opName == OpRecall {
			// The op's seq is known only now; the tombstone names it.
			changed.Content = appendRecalled(nil, actor, now, m.Seq)
		}
		b.Messages = append(b.Messages, changed)
		// The webhook event goes in the same commit; it names the op's
		// seq, known only here. emitWebhook encodes it only when an
		// endpoint of the app wants it.
		if c.wh.wanted(app)&msgOpWebhookBits == 0 {
			return
		}
		if opName == OpRecall {
			c.emitWebhook(b, app, WebhookEvent{Type: WebhookMessageRecalled, Data: &messageRecalledData{
				SessionID: sid, Seq: seq, OpSeq: m.Seq, By: actor, At: now, From: orig.From}})
		} else {
			c.emitWebhook(b, app, WebhookEvent{Type: WebhookMessageEdited, Data: &messageEditedData{
				SessionID: sid, Seq: seq, OpSeq: m.Seq, By: actor, At: now, EditCount: ev.EditCount, Type: ev.Type, Content: ev.Content}})
		}
	}
	if err := c.submit(ctx, o); err != nil {
		return nil, err
	}
	res := <-o.res
	if res.err != nil {
		return nil, res.err
	}
	return &MsgOpResult{Session: sid, Seq: seq, OpSeq: res.send.Seq, At: now, EditCount: ev.EditCount, Duplicate: res.send.Duplicate}, nil
}

// msgOpWebhookBits are the event types a recall or an edit produces.
var msgOpWebhookBits = webhookBit(WebhookMessageRecalled) | webhookBit(WebhookMessageEdited)

// appendRecalled encodes a Recalled (on the journal goroutine: no
// encoding/json).
func appendRecalled(dst []byte, by string, at int64, opSeq uint64) []byte {
	dst = append(dst, `{"by":`...)
	dst = appendString(dst, by)
	dst = append(dst, `,"at":`...)
	dst = strconv.AppendInt(dst, at, 10)
	dst = append(dst, `,"op_seq":`...)
	dst = strconv.AppendUint(dst, opSeq, 10)
	return append(dst, '}')
}

// fanoutOp delivers a committed op entry as its own event (`recall` or
// `edit`) to every online device of every member, the actor's included,
// and publishes it on the message topic (type "op").
func (c *Core) fanoutOp(o *op, now bool) (shared bool) {
	m := &o.msg
	name := OpEdit
	if bytes.HasPrefix(m.Content, []byte(`{"op":"recall"`)) {
		name = OpRecall
	}
	ev := make([]byte, 0, 96+len(m.Content))
	ev = append(ev, `{"event":`...)
	ev = appendString(ev, name)
	ev = append(ev, `,"data":{"session_id":`...)
	ev = strconv.AppendUint(ev, uint64(m.Session), 10)
	ev = append(ev, `,"op_seq":`...)
	ev = strconv.AppendUint(ev, m.Seq, 10)
	ev = append(ev, ',')
	ev = append(ev, m.Content[1:]...) // the MsgOp's fields and its closing brace
	ev = append(ev, '}')
	r := o.sess.members()
	for _, u := range r.users {
		for _, cl := range u.online() {
			if !sendTo(cl.peer, ev, now) {
				c.stats.dropped.Add(1)
			}
		}
	}
	if c.bus.active() {
		c.publish(Event{Topic: TopicMessage, App: m.App, UID: m.From, Session: m.Session,
			Type: TypeOp, Message: &o.msg, Members: r.uids(), Detail: name})
		return true
	}
	return false
}

// recallWindowDefault and editWindowDefault are Config's zeros.
const (
	recallWindowDefault = 2 * time.Minute
	editWindowDefault   = 15 * time.Minute
)

// opFields are the request fields of the message operations. The fast
// decoder leaves requests that use them to encoding/json (opFieldKey):
// they are rare next to sends, and keeping them out of the scanner keeps
// its hot path as it is.
type opFields struct {
	Seqs    []uint64 `json:"seqs"`     // delete: the seqs to hide
	FromSeq uint64   `json:"from_seq"` // delete: a range to hide, with to_seq
	ToSeq   uint64   `json:"to_seq"`
	// send: the seq of the message replied to (quote.go)
	QuoteSeq uint64 `json:"quote_seq"`
	// forward: the sessions to copy seqs into (quote.go)
	ToSessions []SessionID `json:"to_sessions"`
	// group administration (groups_admin.go)
	Role       string `json:"role"`
	Seconds    int64  `json:"seconds"`
	Enabled    *bool  `json:"enabled"`
	Text       string `json:"text"`
	JoinPolicy string `json:"join_policy"`
	// send: mentions (mentions.go)
	Mentions   []string `json:"mentions"`
	MentionAll bool     `json:"mention_all"`
}

// opFieldKey reports whether k names one of opFields.
func opFieldKey(k string) bool {
	switch k {
	case "seqs", "from_seq", "to_seq", "quote_seq", "to_sessions",
		"role", "seconds", "enabled", "text", "join_policy", "mentions", "mention_all":
		return true
	}
	return false
}
