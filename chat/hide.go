package chat

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
)

// Delete for me and clear history: a member hides messages from their own
// history and sync; other members are unaffected.
//
// What a member hid is one record per (session, member) of kind
// KindHidden: the hidden seqs as sorted, merged, non-overlapping ranges.
// One record rather than Member fields because the set is a list (a
// "delete these three messages" leaves holes) that only history and sync
// of that member read, while Member records are read by every session
// view and written by every membership change; and one record per member
// rather than one per range so that a history page costs one Record read,
// not a scan. Clearing the history up to seq is the range [1, seq] of the
// same set, so there is one rule for both.

// KindHidden is the record kind of members' hidden seqs.
const KindHidden = "msg.hidden"

// MaxHiddenRanges caps the separate ranges one member hides in one
// session; past it, clearing the history up to a seq merges them.
const MaxHiddenRanges = 1000

// maxHideSeqs caps the seqs one delete names.
const maxHideSeqs = 500

// SeqRange is the seqs lo..hi, both included.
type SeqRange struct {
	Lo uint64 `json:"lo"`
	Hi uint64 `json:"hi"`
}

// hiddenSet is sorted by Lo, merged: no two ranges overlap or touch.
type hiddenSet []SeqRange

func hiddenKey(sid SessionID, uid string) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(uid)), uint64(sid))
	return append(k, uid...)
}

func encodeHidden(h hiddenSet) []byte {
	b := make([]byte, 0, 16*len(h))
	for _, r := range h {
		b = binary.BigEndian.AppendUint64(b, r.Lo)
		b = binary.BigEndian.AppendUint64(b, r.Hi)
	}
	return b
}

func decodeHidden(b []byte) hiddenSet {
	h := make(hiddenSet, 0, len(b)/16)
	for ; len(b) >= 16; b = b[16:] {
		h = append(h, SeqRange{Lo: binary.BigEndian.Uint64(b), Hi: binary.BigEndian.Uint64(b[8:])})
	}
	return h
}

// merge returns h with rs added, sorted and merged.
func (h hiddenSet) merge(rs []SeqRange) hiddenSet {
	all := append(slices.Clone(h), rs...)
	slices.SortFunc(all, func(a, b SeqRange) int {
		switch {
		case a.Lo < b.Lo:
			return -1
		case a.Lo > b.Lo:
			return 1
		}
		return 0
	})
	out := all[:0]
	for _, r := range all {
		if n := len(out); n > 0 && (r.Lo <= out[n-1].Hi || r.Lo == out[n-1].Hi+1) { // no overflow at the top seq
			out[n-1].Hi = max(out[n-1].Hi, r.Hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

// containing returns the range holding seq, if any.
func (h hiddenSet) containing(seq uint64) (SeqRange, bool) {
	i, found := slices.BinarySearchFunc(h, seq, func(r SeqRange, s uint64) int {
		switch {
		case r.Hi < s:
			return -1
		case r.Lo > s:
			return 1
		}
		return 0
	})
	if found {
		return h[i], true
	}
	return SeqRange{}, false
}

// below returns the highest Hi of a range entirely below seq (0: none).
func (h hiddenSet) below(seq uint64) uint64 {
	var hi uint64
	for _, r := range h {
		if r.Hi >= seq {
			break
		}
		hi = r.Hi
	}
	return hi
}

// above returns the lowest Lo of a range entirely above seq (0: none).
func (h hiddenSet) above(seq uint64) uint64 {
	for _, r := range h {
		if r.Lo > seq {
			return r.Lo
		}
	}
	return 0
}

// hidden reads what uid hid in sid.
func (c *Core) hidden(ctx context.Context, sid SessionID, uid string) (hiddenSet, error) {
	b, err := c.store.Record(ctx, KindHidden, hiddenKey(sid, uid))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return decodeHidden(b), nil
}

// hiddenData answers delete, clear and hidden.
type hiddenData struct {
	SessionID SessionID  `json:"session_id"`
	Hidden    []SeqRange `json:"hidden"` // everything the caller hides in the session now
}

// hideEvent tells a member's other devices what they hid.
type hideEvent struct {
	SessionID SessionID  `json:"session_id"`
	Added     []SeqRange `json:"added"`
	Hidden    []SeqRange `json:"hidden"`
}

// deleteForMe hides the seqs r names (seqs, or from_seq..to_seq).
func (c *Core) deleteForMe(ctx context.Context, cl *Client, r *request) (any, error) {
	var rs []SeqRange
	switch {
	case len(r.Seqs) > 0 && (r.FromSeq != 0 || r.ToSeq != 0):
		return nil, Errf(CodeBadRequest, "give seqs or from_seq and to_seq, not both")
	case len(r.Seqs) > maxHideSeqs:
		return nil, Errf(CodeTooLarge, "at most 500 seqs in one delete; use from_seq and to_seq for a range")
	case len(r.Seqs) > 0:
		for _, s := range r.Seqs {
			if s == 0 {
				return nil, Errf(CodeBadRequest, "seqs start at 1")
			}
			rs = append(rs, SeqRange{Lo: s, Hi: s})
		}
	case r.FromSeq != 0 && r.ToSeq >= r.FromSeq:
		rs = []SeqRange{{Lo: r.FromSeq, Hi: r.ToSeq}}
	default:
		return nil, Errf(CodeBadRequest, "missing seqs, or from_seq and to_seq (from_seq ≥ 1, to_seq ≥ from_seq): which messages to delete for you")
	}
	return c.hide(ctx, cl, r.SessionID, rs, 0)
}

// clearHistory hides everything up to seq (0: the session's last seq) and
// marks it read.
func (c *Core) clearHistory(ctx context.Context, cl *Client, sid SessionID, seq uint64) (any, error) {
	if _, err := c.memberSession(ctx, cl.id, sid); err != nil {
		return nil, err
	}
	rec, err := c.store.Session(ctx, sid)
	if err != nil {
		return nil, err
	}
	if seq == 0 || seq > rec.LastSeq {
		seq = rec.LastSeq
	}
	if seq == 0 {
		return hiddenData{SessionID: sid, Hidden: []SeqRange{}}, nil
	}
	return c.hide(ctx, cl, sid, []SeqRange{{Lo: 1, Hi: seq}}, seq)
}

// hide adds rs to what cl's user hides in sid; read > 0 also raises their
// read mark to it, in the same commit.
func (c *Core) hide(ctx context.Context, cl *Client, sid SessionID, rs []SeqRange, read uint64) (any, error) {
	id := cl.id
	s, err := c.memberSession(ctx, id, sid)
	if err != nil {
		return nil, err
	}
	key := hiddenKey(sid, id.UID)
	// One read-merge-write per member at a time (two devices at once).
	l := c.lockFor("\x03" + string(key))
	l.Lock()
	defer l.Unlock()
	h, err := c.hidden(ctx, sid, id.UID)
	if err != nil {
		return nil, err
	}
	next := h.merge(rs)
	if len(next) > MaxHiddenRanges {
		return nil, Errf(CodeTooLarge, "at most 1000 separate deleted ranges per session; clear the history up to a seq instead")
	}
	b := &Batch{Records: []Record{{Kind: KindHidden, Key: key, Value: encodeHidden(next)}}}
	if read > 0 {
		b.Reads = []ReadMark{{Session: sid, UID: id.UID, Seq: read}}
	}
	if err := c.write(ctx, b); err != nil {
		return nil, err
	}
	ev := appendEvent(nil, "hide", hideEvent{SessionID: sid, Added: rs, Hidden: next})
	for _, o := range cl.u.online() {
		if o != cl {
			o.reply(ev)
		}
	}
	c.publish(Event{Topic: TopicSession, App: id.App, UID: id.UID, Session: s.id, Type: "hide"})
	return hiddenData{SessionID: sid, Hidden: next}, nil
}

// hiddenAction lists what the caller hides in a session.
func (c *Core) hiddenAction(ctx context.Context, id Identity, sid SessionID) (any, error) {
	if _, err := c.memberSession(ctx, id, sid); err != nil {
		return nil, err
	}
	h, err := c.hidden(ctx, sid, id.UID)
	if err != nil {
		return nil, err
	}
	if h == nil {
		h = hiddenSet{}
	}
	return hiddenData{SessionID: sid, Hidden: h}, nil
}

// visibleNewest reads up to n of the newest messages with seq <= hi that
// h does not hide, ascending, fetching around the hidden ranges.
func (c *Core) visibleNewest(ctx context.Context, sid SessionID, h hiddenSet, hi uint64, n int) ([]Message, error) {
	var out []Message
	for hi >= 1 && len(out) < n {
		if r, ok := h.containing(hi); ok {
			if r.Lo <= 1 {
				break
			}
			hi = r.Lo - 1
			continue
		}
		lo := h.below(hi) + 1
		ms, err := c.store.Messages(ctx, sid, lo, hi, n-len(out), true)
		if err != nil {
			return nil, err
		}
		out = append(ms, out...)
		if lo <= 1 {
			break
		}
		hi = lo - 1
	}
	return out, nil
}

// visibleOldest reads up to n of the oldest messages with seq >= lo that
// h does not hide, ascending.
func (c *Core) visibleOldest(ctx context.Context, sid SessionID, h hiddenSet, lo uint64, n int) ([]Message, error) {
	var out []Message
	for len(out) < n {
		if r, ok := h.containing(lo); ok {
			if r.Hi == ^uint64(0) {
				break
			}
			lo = r.Hi + 1
			continue
		}
		hi := ^uint64(0)
		if a := h.above(lo); a != 0 {
			hi = a - 1
		}
		ms, err := c.store.Messages(ctx, sid, lo, hi, n-len(out), false)
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
		if hi == ^uint64(0) {
			break // nothing hidden above: the store had no more
		}
		lo = hi + 1
	}
	return out, nil
}

// hiddenPage is historyPage (back from before) or a sync page (forward
// from after) of a member who hides h.
func (c *Core) hiddenPage(ctx context.Context, sid SessionID, h hiddenSet, before, after uint64, forward bool, limit int) (*messagesPage, error) {
	limit = c.pageLimit(limit)
	var ms []Message
	var err error
	if forward {
		ms, err = c.visibleOldest(ctx, sid, h, after+1, limit+1)
	} else {
		hi := ^uint64(0)
		if before > 0 {
			hi = before - 1
		}
		ms, err = c.visibleNewest(ctx, sid, h, hi, limit+1)
	}
	if err != nil {
		return nil, err
	}
	cleanMessages(ms)
	if err := c.fillQuotes(ctx, sid, ms); err != nil {
		return nil, err
	}
	p := &messagesPage{Messages: ms}
	if len(ms) > limit {
		p.HasMore = true
		if forward {
			p.Messages = ms[:limit]
		} else {
			p.Messages = ms[1:]
		}
	}
	if fit, cut := c.fitPage(p.Messages, !forward); cut {
		p.Messages, p.HasMore = fit, true
	}
	if p.Messages == nil {
		p.Messages = []Message{}
	}
	return p, nil
}
