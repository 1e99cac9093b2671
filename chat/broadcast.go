package chat

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"sync"
)

// Broadcast: the host sends one notice to every user of an app, or to a
// list of uids, over the server API.
//
// It is stored once. Each app has one broadcast channel: a session of
// KindBroadcast with no members, whose messages are the app's
// broadcasts, numbered by the channel's own seqs like any session's. A
// broadcast to a list of uids also stores its audience, once, as a
// record (KindBroadcastAudience, key channel+seq: the sorted uids); one
// to everyone stores none. Each user keeps one read mark on the channel
// (a record, KindBroadcastRead, written only when they read), so a
// user's broadcast unread count is the broadcasts after their mark that
// are addressed to them. Nothing is written per recipient when a
// broadcast is sent: sending one to 100,000 users costs one message (and
// for a list, one record) on disk.
//
// Clients see the channel merged into their system session: the
// `sessions` reply carries it as `broadcasts` (last seq, read mark,
// unread), the `broadcasts` action pages through what is addressed to
// them, `broadcast_read` moves their mark, and online users get each
// broadcast at once as a `broadcast` event (encoded once, shared by every
// recipient).

// KindBroadcast is an app's broadcast channel.
const KindBroadcast Kind = 6

// Record kinds of broadcasts.
const (
	KindBroadcastChannel  = "bcast.chan" // app → the channel's session id
	KindBroadcastAudience = "bcast.aud"  // channel, seq → the uids, sorted, NUL-separated
	KindBroadcastRead     = "bcast.read" // app NUL uid → the user's read seq
)

// MaxBroadcastUIDs caps the uids of one broadcast to a list.
const MaxBroadcastUIDs = 100000

// BroadcastInput is one broadcast. Empty UIDs means every user of the app.
type BroadcastInput struct {
	UIDs    []string `json:"uids,omitempty"`
	Type    string   `json:"type"`
	Content []byte   `json:"-"`
}

// BroadcastResult acknowledges a durable broadcast.
type BroadcastResult struct {
	Channel    SessionID `json:"channel_id"`
	Seq        uint64    `json:"seq"`
	CreatedAt  int64     `json:"created_at"`
	Recipients int       `json:"recipients"` // uids named (0: every user)
	Online     int       `json:"online"`     // devices it was pushed to at once
}

// broadcasts is the core's broadcast state.
type broadcasts struct {
	mu    sync.Mutex                 // guards chans, aud
	chans map[string]SessionID       // app → channel
	aud   map[audKey]map[string]bool // recent list audiences (bounded: audCache)
}

type audKey struct {
	ch  SessionID
	seq uint64
}

// audCache bounds the audiences kept in memory.
const audCache = 64

func audRecordKey(ch SessionID, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, uint64(ch)), seq)
}

func bcastReadKey(app, uid string) []byte { return []byte(app + "\x00" + uid) }

// channel finds or creates app's broadcast channel.
func (c *Core) channel(ctx context.Context, app string, create bool) (SessionID, error) {
	c.bcast.mu.Lock()
	id, ok := c.bcast.chans[app]
	c.bcast.mu.Unlock()
	if ok {
		return id, nil
	}
	l := c.lockFor("\x05" + app)
	l.Lock()
	defer l.Unlock()
	gen := c.cacheGen(cacheBcastChan) // coherent.go
	b, err := c.store.Record(ctx, KindBroadcastChannel, []byte(app))
	switch {
	case err == nil && len(b) == 8:
		id = SessionID(binary.BigEndian.Uint64(b))
	case errors.Is(err, ErrNotFound) && !create:
		return 0, nil
	case errors.Is(err, ErrNotFound) || err == nil:
		sid, err := c.newSessionID(ctx)
		if err != nil {
			return 0, err
		}
		rec := Session{ID: sid, App: app, Kind: KindBroadcast, Name: "broadcast", CreatedAt: c.nowMS()}
		if err := c.write(ctx, &Batch{Sessions: []Session{rec}, Records: []Record{{Kind: KindBroadcastChannel, Key: []byte(app),
			Value: binary.BigEndian.AppendUint64(nil, uint64(rec.ID))}}}); err != nil {
			return 0, err
		}
		c.cacheSession(&rec, nil)
		id = rec.ID
	default:
		return 0, err
	}
	c.bcast.mu.Lock()
	if c.bcast.chans == nil {
		c.bcast.chans = map[string]SessionID{}
	}
	if !c.cacheStale(cacheBcastChan, gen) { // else another node changed it meanwhile: not cached
		c.bcast.chans[app] = id
	}
	c.bcast.mu.Unlock()
	return id, nil
}

// Broadcast stores a notice once and pushes it to the online recipients.
func (c *Core) Broadcast(ctx context.Context, app string, in BroadcastInput) (BroadcastResult, error) {
	if _, err := c.App(ctx, app); err != nil {
		return BroadcastResult{}, err
	}
	if in.Type == "" {
		in.Type = "notice"
	}
	if len(in.UIDs) > MaxBroadcastUIDs {
		return BroadcastResult{}, Errf(CodeTooLarge, "at most 100000 uids in one broadcast; leave uids out to reach every user")
	}
	uids := slices.Clone(in.UIDs)
	slices.Sort(uids)
	uids = slices.Compact(uids)
	for _, u := range uids {
		if u == "" || strings.ContainsRune(u, 0) {
			return BroadcastResult{}, Errf(CodeBadRequest, "uids must be non-empty and hold no NUL")
		}
	}
	ch, err := c.channel(ctx, app, true)
	if err != nil {
		return BroadcastResult{}, err
	}
	var attach func(m *Message, b *Batch)
	if len(uids) > 0 {
		aud := []byte(strings.Join(uids, "\x00"))
		attach = func(m *Message, b *Batch) {
			b.Records = append(b.Records, Record{Kind: KindBroadcastAudience, Key: audRecordKey(m.Session, m.Seq), Value: aud})
		}
	}
	o, err := c.prepareSend(ctx, app, &SendInput{Session: ch, Type: in.Type, Content: in.Content})
	if err != nil {
		return BroadcastResult{}, err
	}
	o.res, o.attach = make(chan opResult, 1), attach
	if len(uids) > 0 {
		o.audience = uids
	}
	if err := c.submit(ctx, o); err != nil {
		return BroadcastResult{}, err
	}
	r := <-o.res // fanoutBroadcast has set o.delivered before
	if r.err != nil {
		return BroadcastResult{}, r.err
	}
	return BroadcastResult{Channel: ch, Seq: r.send.Seq, CreatedAt: r.send.CreatedAt, Recipients: len(uids), Online: o.delivered}, nil
}

// fanoutBroadcast pushes a committed broadcast (o, in a channel) as a
// `broadcast` event to every online device of its audience: the uids of
// its audience record (attached in the same commit, in o's batch: see
// audienceOf), or every online user of the app.
func (c *Core) fanoutBroadcast(o *op, now bool) (shared bool) {
	m := &o.msg
	ev := make([]byte, 0, 240+len(m.Content))
	ev = append(ev, `{"event":"broadcast","data":`...)
	ev = appendMessage(ev, m)
	ev = append(ev, '}')
	var targets []*user
	if o.audience != nil {
		for _, uid := range o.audience {
			targets = append(targets, c.userRef(m.App, uid))
		}
	} else {
		c.mu.Lock()
		if a := c.users[m.App]; a != nil {
			for _, u := range a.users.slots {
				if u != nil && u.clients.Load() != nil {
					targets = append(targets, u)
				}
			}
		}
		c.mu.Unlock()
	}
	var n uint64
	for _, u := range targets {
		for _, cl := range u.online() {
			n++
			if !sendTo(cl.peer, ev, now) {
				c.stats.dropped.Add(1)
			}
		}
	}
	c.stats.deliveries.Add(n)
	o.delivered = int(n)
	if c.bus.active() {
		c.publish(Event{Topic: TopicMessage, App: m.App, Session: m.Session, Type: m.Type, Message: &o.msg, Members: o.audience, Detail: "broadcast"})
		return true
	}
	return false
}

// audience returns the uids a broadcast is for (nil: everyone), as a set.
func (c *Core) audience(ctx context.Context, ch SessionID, seq uint64) (map[string]bool, error) {
	k := audKey{ch, seq}
	c.bcast.mu.Lock()
	set, ok := c.bcast.aud[k]
	c.bcast.mu.Unlock()
	if ok {
		return set, nil
	}
	gen := c.cacheGen(cacheBcastAud) // coherent.go
	b, err := c.store.Record(ctx, KindBroadcastAudience, audRecordKey(ch, seq))
	if errors.Is(err, ErrNotFound) {
		set = nil
	} else if err != nil {
		return nil, err
	} else {
		set = map[string]bool{}
		for _, u := range strings.Split(string(b), "\x00") {
			set[u] = true
		}
	}
	c.bcast.mu.Lock()
	if c.bcast.aud == nil || len(c.bcast.aud) >= audCache {
		c.bcast.aud = map[audKey]map[string]bool{}
	}
	if !c.cacheStale(cacheBcastAud, gen) {
		c.bcast.aud[k] = set
	}
	c.bcast.mu.Unlock()
	return set, nil
}

// forUser keeps the broadcasts of ms addressed to uid.
func (c *Core) forUser(ctx context.Context, ms []Message, uid string) ([]Message, error) {
	out := ms[:0]
	for _, m := range ms {
		set, err := c.audience(ctx, m.Session, m.Seq)
		if err != nil {
			return nil, err
		}
		if set == nil || set[uid] {
			out = append(out, m)
		}
	}
	return out, nil
}

// BroadcastView is a user's view of the app's broadcasts, shown beside
// their system session.
type BroadcastView struct {
	Channel     SessionID `json:"channel_id"`
	LastSeq     uint64    `json:"last_seq"` // the channel's: broadcasts to others count too
	ReadSeq     uint64    `json:"read_seq"`
	Unread      uint64    `json:"unread"` // addressed to the user, after read_seq (among the newest 500)
	LastAt      int64     `json:"last_at,omitempty"`
	LastPreview string    `json:"last_preview,omitempty"`
}

func (c *Core) broadcastRead(ctx context.Context, app, uid string) (uint64, error) {
	b, err := c.store.Record(ctx, KindBroadcastRead, bcastReadKey(app, uid))
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil || len(b) != 8 {
		return 0, err
	}
	return binary.BigEndian.Uint64(b), nil
}

// broadcastView returns id's view of the app's broadcasts (nil: the app
// never broadcast).
func (c *Core) broadcastView(ctx context.Context, id Identity) (*BroadcastView, error) {
	ch, err := c.channel(ctx, id.App, false)
	if err != nil || ch == 0 {
		return nil, err
	}
	rec, err := c.store.Session(ctx, ch)
	if err != nil {
		return nil, err
	}
	read, err := c.broadcastRead(ctx, id.App, id.UID)
	if err != nil {
		return nil, err
	}
	v := &BroadcastView{Channel: ch, LastSeq: rec.LastSeq, ReadSeq: read, LastAt: rec.LastAt, LastPreview: rec.LastPreview}
	if rec.LastSeq > read {
		lo := max(read+1, rec.LastSeq-min(rec.LastSeq, mentionScan)+1)
		ms, err := c.store.Messages(ctx, ch, lo, rec.LastSeq, 0, false)
		if err != nil {
			return nil, err
		}
		if ms, err = c.forUser(ctx, ms, id.UID); err != nil {
			return nil, err
		}
		v.Unread = uint64(len(ms))
	}
	return v, nil
}

// broadcastsAction pages through the broadcasts addressed to the caller:
// forward after `after` (0: from the first), or back from `before`.
func (c *Core) broadcastsAction(ctx context.Context, id Identity, r *request) (any, error) {
	ch, err := c.channel(ctx, id.App, false)
	if err != nil {
		return nil, err
	}
	if ch == 0 {
		return &messagesPage{Messages: []Message{}}, nil
	}
	limit := c.pageLimit(r.Limit)
	var out []Message
	back := r.Before > 0
	lo, hi := r.After+1, ^uint64(0)
	if back {
		lo, hi = 1, r.Before-1
	}
	for len(out) <= limit && lo <= hi && hi > 0 {
		ms, err := c.store.Messages(ctx, ch, lo, hi, MaxPage, back)
		if err != nil {
			return nil, err
		}
		if len(ms) == 0 {
			break
		}
		if back {
			hi = ms[0].Seq - 1
		} else {
			lo = ms[len(ms)-1].Seq + 1
		}
		if ms, err = c.forUser(ctx, ms, id.UID); err != nil {
			return nil, err
		}
		if back {
			out = append(ms, out...)
		} else {
			out = append(out, ms...)
		}
	}
	cleanMessages(out)
	p := &messagesPage{Messages: out}
	if len(out) > limit {
		p.HasMore = true
		if back {
			p.Messages = out[len(out)-limit:]
		} else {
			p.Messages = out[:limit]
		}
	}
	if p.Messages == nil {
		p.Messages = []Message{}
	}
	return p, nil
}

// broadcastReadAction raises the caller's broadcast read mark.
func (c *Core) broadcastReadAction(ctx context.Context, id Identity, seq uint64) (any, error) {
	if seq == 0 {
		return nil, Errf(CodeBadRequest, "missing seq: read up to which broadcast")
	}
	ch, err := c.channel(ctx, id.App, false)
	if err != nil {
		return nil, err
	}
	if ch == 0 {
		return nil, Errf(CodeNotFound, "no broadcasts in app "+clip(id.App, 64))
	}
	rec, err := c.store.Session(ctx, ch)
	if err != nil {
		return nil, err
	}
	seq = min(seq, rec.LastSeq)
	key := bcastReadKey(id.App, id.UID)
	l := c.lockFor("\x06" + string(key))
	l.Lock()
	defer l.Unlock()
	cur, err := c.broadcastRead(ctx, id.App, id.UID)
	if err != nil {
		return nil, err
	}
	if seq > cur {
		if err := c.write(ctx, &Batch{Records: []Record{{Kind: KindBroadcastRead, Key: key, Value: binary.BigEndian.AppendUint64(nil, seq)}}}); err != nil {
			return nil, err
		}
		cur = seq
	}
	return readData{SessionID: ch, ReadSeq: cur}, nil
}
