package chat

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Webhooks: signed HTTP POSTs to the host site when something happens in
// chat (docs/webhooks.md). This file holds the endpoints an app registers
// and the events; outbox.go holds the durable outbox and the dispatcher
// that delivers it. The HTTP client itself sits behind WebhookSender
// (internal/webhook implements it), so the core decides what to send and
// when, and never opens a socket.
//
// Every event is written as an outbox record (kind "wh.ev") in the same
// commit as the change that causes it (emitWebhook), and only when some
// enabled endpoint of the app wants that event type: an app without
// endpoints pays one atomic load per change.

// Webhook event types.
const (
	WebhookMessageCreated = "message.created"
	WebhookPushOffline    = "push.offline"
	WebhookSessionCreated = "session.created"
	WebhookGroupChanged   = "group.changed"
	WebhookUserOnline     = "user.online"
	WebhookUserOffline    = "user.offline"

	WebhookServiceQueued   = "service.queued"
	WebhookServiceAssigned = "service.assigned"
	WebhookServiceResolved = "service.resolved"
	WebhookServiceRated    = "service.rated"
	WebhookConsultStarted  = "consult.started"
	WebhookConsultEnded    = "consult.ended"

	WebhookMessageRecalled = "message.recalled"
	WebhookMessageEdited   = "message.edited"
)

// WebhookEventTypes lists every event type an endpoint may ask for, in the
// order of their bits in a subscription mask. Add a new type at the end
// (docs/webhooks.md, "Adding an event").
var WebhookEventTypes = []string{
	WebhookMessageCreated, WebhookPushOffline, WebhookSessionCreated, WebhookGroupChanged,
	WebhookUserOnline, WebhookUserOffline,
	WebhookServiceQueued, WebhookServiceAssigned, WebhookServiceResolved, WebhookServiceRated,
	WebhookConsultStarted, WebhookConsultEnded,
	WebhookMessageRecalled, WebhookMessageEdited,
}

// webhookBit is the subscription bit of an event type, 0 when unknown.
func webhookBit(typ string) uint64 {
	for i, t := range WebhookEventTypes {
		if t == typ {
			return 1 << uint(i)
		}
	}
	return 0
}

// WebhookEndpoint is one URL an app receives events at.
type WebhookEndpoint struct {
	ID        string   `json:"id"`
	App       string   `json:"app"`
	URL       string   `json:"url"`
	Events    []string `json:"events"` // event types; "*" means all
	Secret    string   `json:"secret"`
	Enabled   bool     `json:"enabled"`
	CreatedAt int64    `json:"created_at"` // unix ms
	UpdatedAt int64    `json:"updated_at"`
}

// wants reports whether the endpoint takes events of type typ.
func (e *WebhookEndpoint) wants(typ string) bool {
	return e.Enabled && (slices.Contains(e.Events, "*") || slices.Contains(e.Events, typ))
}

func (e *WebhookEndpoint) mask() uint64 {
	if !e.Enabled {
		return 0
	}
	var m uint64
	for _, t := range e.Events {
		if t == "*" {
			return ^uint64(0)
		}
		m |= webhookBit(t)
	}
	return m
}

// WebhookEndpointInput creates or changes an endpoint. Nil fields of a
// change keep their values.
type WebhookEndpointInput struct {
	URL     *string  `json:"url"`
	Events  []string `json:"events"`
	Secret  *string  `json:"secret"`
	Enabled *bool    `json:"enabled"`
}

// Record kinds of the webhook domain.
const (
	kindWebhookEndpoint = "wh.ep" // app\x00id → WebhookEndpoint (JSON)
	kindWebhookEvent    = "wh.ev" // event id (8 bytes BE) → outboxEvent (JSON)
	kindWebhookDelivery = "wh.dl" // app\x00 event id (8 bytes) id → WebhookDelivery (JSON)
)

// maxWebhookEndpoints caps one app's endpoints.
const maxWebhookEndpoints = 16

// webhooks is the core's webhook state.
type webhooks struct {
	mu        sync.Mutex                    // guards endpoints; a leaf
	endpoints map[string][]*WebhookEndpoint // app → its endpoints (immutable values; replaced, never changed)
	// subs is the per-app mask of event types some enabled endpoint wants,
	// rebuilt under mu and read lock-free by emitters (the journal
	// included). Nil when no app has an enabled endpoint.
	subs atomic.Pointer[map[string]uint64]

	lastID atomic.Int64 // the newest event id handed out (unix ns, strictly increasing)
	// tag: on a shared store, this node's event id tag (whtag.go), held
	// as the lease "wh.tag/<tag>" by tagHolder; -1 on one node.
	tag       int64
	tagHolder string
	kick      chan struct{} // wakes the dispatcher: new outbox events are committed (buffer 1)
	// redeliver carries RedeliverWebhooks' requests to the dispatcher
	// while running says it is there to take them.
	redeliver chan redeliverReq
	running   atomic.Bool
	standby   atomic.Bool   // RunWebhooks runs on a shared store without the lease: another node dispatches (whlease.go)
	depth     atomic.Int64  // outbox events not yet fanned out plus deliveries pending
	max       atomic.Int64  // the outbox bound (WebhookConfig.MaxOutbox); 0 until RunWebhooks
	dropped   atomic.Uint64 // events not written because the outbox was full

	// writeMu serialises the read-modify-write of endpoints and hooks:
	// held across the check, the journal write and the table update (an
	// outer lock, like appMu; nothing else takes it).
	writeMu sync.Mutex
	// The before-send hooks (beforesend.go): the app → hook table,
	// replaced whole under writeMu and read lock-free on the send path;
	// the sender RunWebhooks was given (nil before it runs).
	hooks  atomic.Pointer[map[string]*BeforeSendHook]
	sender atomic.Pointer[WebhookSender]
	// senderSet is closed when sender is first set: a send checked before
	// that (the start: RunWebhooks starts beside the listeners) waits for
	// it, within its hook's timeout, rather than skipping the filter.
	senderSet  chan struct{}
	senderOnce sync.Once

	hookCalls, hookRejected, hookRewritten, hookFallbacks atomic.Uint64
	hookLatency                                           *Histogram

	delivered atomic.Uint64 // deliveries answered 2xx
	failed    atomic.Uint64 // deliveries given up (retry window over)
	attempts  atomic.Uint64 // HTTP attempts
	retries   atomic.Uint64 // attempts that failed and were scheduled again
	latency   *Histogram    // attempt durations
}

func newWebhooks() *webhooks {
	return &webhooks{endpoints: make(map[string][]*WebhookEndpoint), kick: make(chan struct{}, 1),
		redeliver: make(chan redeliverReq), senderSet: make(chan struct{}), tag: -1,
		latency: NewHistogram(ackBounds, 1e9), hookLatency: NewHistogram(ackBounds, 1e9)}
}

// setSender gives the before-send hooks the sender RunWebhooks was given.
func (w *webhooks) setSender(s *WebhookSender) {
	w.sender.Store(s)
	w.senderOnce.Do(func() { close(w.senderSet) })
}

// wanted returns the mask of event types app's enabled endpoints want.
func (w *webhooks) wanted(app string) uint64 {
	p := w.subs.Load()
	if p == nil {
		return 0
	}
	return (*p)[app]
}

// republish rebuilds subs. Called with mu held.
func (w *webhooks) republish() {
	m := make(map[string]uint64)
	for app, eps := range w.endpoints {
		var mask uint64
		for _, e := range eps {
			mask |= e.mask()
		}
		if mask != 0 {
			m[app] = mask
		}
	}
	if len(m) == 0 {
		w.subs.Store(nil)
		return
	}
	w.subs.Store(&m)
}

// nextID hands out an event id: the wall clock in ns, strictly increasing
// (ids sort by creation, and survive restarts unless the clock goes back
// past the newest stored one, which startup guards against).
func (w *webhooks) nextID() int64 {
	if w.tag >= 0 {
		return w.nextTaggedID()
	}
	for {
		last := w.lastID.Load()
		id := max(time.Now().UnixNano(), last+1)
		if w.lastID.CompareAndSwap(last, id) {
			return id
		}
	}
}

// nextTaggedID is nextID on a shared store (whtag.go): µs << 10 | tag,
// strictly increasing, the tag kept in the low bits.
func (w *webhooks) nextTaggedID() int64 {
	for {
		last := w.lastID.Load()
		id := time.Now().UnixMicro()<<eventTagBits | w.tag
		if next := (last>>eventTagBits+1)<<eventTagBits | w.tag; id < next {
			id = next
		}
		if w.lastID.CompareAndSwap(last, id) {
			return id
		}
	}
}

func (w *webhooks) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// full reports whether the outbox is at its bound (counting a drop).
func (w *webhooks) full() bool {
	if m := w.max.Load(); m > 0 && w.depth.Load() >= m {
		w.dropped.Add(1)
		return true
	}
	return false
}

// loadWebhooks reads the endpoints at startup.
func (c *Core) loadWebhooks(ctx context.Context) error {
	recs, err := c.store.ScanRecords(ctx, kindWebhookEndpoint, nil, nil, 0, false)
	if err != nil {
		return err
	}
	w := c.wh
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range recs {
		var e WebhookEndpoint
		if err := json.Unmarshal(r.Value, &e); err != nil {
			return errors.New("chat: webhook endpoint " + strconv.Quote(string(r.Key)) + ": " + err.Error())
		}
		w.endpoints[e.App] = append(w.endpoints[e.App], &e)
	}
	w.republish()
	// Event ids must keep increasing across restarts.
	if err := c.loadHooks(ctx); err != nil {
		return err
	}
	// The outbox's events count towards its bound from the start.
	evs, err := c.store.ScanRecords(ctx, kindWebhookEvent, nil, nil, 0, false)
	if err != nil {
		return err
	}
	w.depth.Store(int64(len(evs)))
	if len(evs) > 0 {
		w.lastID.Store(int64(beUint64(evs[len(evs)-1].Key)))
	}
	return nil
}

// ---- events

// WebhookEvent is one event to report to the host: its type (one of
// WebhookEventTypes) and its data, marshalled with encoding/json into the
// delivery's "data" field.
type WebhookEvent struct {
	Type string
	Data any
}

// outboxEvent is a "wh.ev" record's value.
type outboxEvent struct {
	App  string          `json:"app"`
	Type string          `json:"type"`
	At   int64           `json:"at"` // unix ms
	Data json.RawMessage `json:"data,omitempty"`
	// message.created (and push.offline): the message, and who was
	// offline when it was committed (the data is built at fan-out from
	// the stored message).
	Session SessionID `json:"session_id,omitempty"`
	Seq     uint64    `json:"seq,omitempty"`
	Online  []string  `json:"online,omitempty"`
	Offline []string  `json:"offline,omitempty"`
}

// emitWebhook adds to b the outbox records of the events that some
// enabled endpoint of app wants, so that they commit with b's change; the
// caller then writes b (c.write). It costs one atomic load when app has no
// endpoint. Use it for every new event type:
//
//	b := &Batch{Records: conv}
//	c.emitWebhook(b, app, WebhookEvent{Type: "service.assigned", Data: assigned})
//	err := c.write(ctx, b)
func (c *Core) emitWebhook(b *Batch, app string, evs ...WebhookEvent) {
	mask := c.wh.wanted(app)
	if mask == 0 {
		return
	}
	for _, ev := range evs {
		if mask&webhookBit(ev.Type) != 0 {
			c.addEvent(b, app, ev, c.nowMS())
		}
	}
}

// addEvent adds ev, which happened at `at` (unix ms), to b's outbox records.
func (c *Core) addEvent(b *Batch, app string, ev WebhookEvent, at int64) {
	data, err := json.Marshal(ev.Data)
	if err != nil {
		c.cfg.LogError("webhooks: encoding a "+ev.Type+" event", err)
		return
	}
	c.addOutbox(b, &outboxEvent{App: app, Type: ev.Type, At: at, Data: data})
}

// addOutbox appends ev as an outbox record to b, unless the outbox is full.
func (c *Core) addOutbox(b *Batch, ev *outboxEvent) {
	if c.wh.full() {
		return
	}
	v, err := json.Marshal(ev)
	if err != nil {
		c.cfg.LogError("webhooks: encoding an outbox event", err)
		return
	}
	c.wh.depth.Add(1)
	// On the journal (messages, attach) this id is final; a write from
	// elsewhere is renumbered when the journal takes it (numberOutbox).
	b.Records = append(b.Records, Record{Kind: kindWebhookEvent, Key: beKey(uint64(c.wh.nextID())), Value: v})
}

// webhookMessage runs on the journal goroutine for a message of an app
// whose endpoints want message.created or push.offline: it records the
// outbox event, with who was online, in the message's own commit — for
// an app that wants only push.offline, only when a recipient is offline. The
// cost is one small record per message (which rides the write-ahead log
// with the message, see records.go) and a walk of the session's roster;
// apps without such endpoints skip it (one atomic load).
func (c *Core) webhookMessage(o *op, b *Batch) {
	m := &o.msg
	ev := outboxEvent{App: m.App, Type: WebhookMessageCreated, At: m.CreatedAt, Session: m.Session, Seq: m.Seq}
	if o.sess != nil {
		for _, u := range o.sess.members().users {
			if u.uid == m.From {
				continue
			}
			if len(u.online()) > 0 {
				ev.Online = append(ev.Online, u.uid)
			} else {
				ev.Offline = append(ev.Offline, u.uid)
			}
		}
	}
	if len(ev.Offline) == 0 && c.wh.wanted(m.App)&webhookBit(WebhookMessageCreated) == 0 {
		return // only pushes are wanted, and everyone is online: nothing to record
	}
	c.addOutbox(b, &ev)
}

// numberOutbox gives the outbox events of a write that reached the
// journal fresh ids, in commit order. Runs on the journal goroutine. The
// dispatcher reads the outbox onwards from the newest event it has seen,
// so an event must never commit after one with a higher id: ids handed
// out before the journal (by concurrent writers) could.
func (c *Core) numberOutbox(recs []Record) {
	for i := range recs {
		if recs[i].Kind == kindWebhookEvent {
			recs[i].Key = beKey(uint64(c.wh.nextID()))
		}
	}
}

// webhookCommitted wakes the dispatcher when a committed batch carried
// outbox events. Called by the journal after a successful commit.
func (c *Core) webhookCommitted(b *Batch) {
	for i := range b.Records {
		if b.Records[i].Kind == kindWebhookEvent {
			c.wh.wake()
			return
		}
	}
}

// ---- endpoints API (the signed server API and chatctl)

// WebhookEndpoints lists app's endpoints.
func (c *Core) WebhookEndpoints(ctx context.Context, app string) ([]WebhookEndpoint, error) {
	if _, err := c.App(ctx, app); err != nil {
		return nil, err
	}
	c.wh.mu.Lock()
	defer c.wh.mu.Unlock()
	out := make([]WebhookEndpoint, 0, len(c.wh.endpoints[app]))
	for _, e := range c.wh.endpoints[app] {
		out = append(out, *e)
	}
	return out, nil
}

// CreateWebhookEndpoint registers an endpoint. URL and events are needed;
// an empty secret is generated; enabled defaults to true.
func (c *Core) CreateWebhookEndpoint(ctx context.Context, app string, in WebhookEndpointInput) (WebhookEndpoint, error) {
	if _, err := c.App(ctx, app); err != nil {
		return WebhookEndpoint{}, err
	}
	if in.URL == nil || *in.URL == "" {
		return WebhookEndpoint{}, Errf(CodeBadRequest, "missing url")
	}
	if len(in.Events) == 0 {
		return WebhookEndpoint{}, Errf(CodeBadRequest, "missing events: the event types to receive (or [\"*\"]); types are "+strings.Join(WebhookEventTypes, ", "))
	}
	now := c.nowMS()
	e := WebhookEndpoint{ID: "wh_" + newSecret()[:12], App: app, Enabled: true, CreatedAt: now, UpdatedAt: now}
	if err := c.applyEndpointInput(&e, in); err != nil {
		return WebhookEndpoint{}, err
	}
	if e.Secret == "" {
		e.Secret = "whsec_" + newSecret()
	}
	c.wh.writeMu.Lock()
	defer c.wh.writeMu.Unlock()
	c.wh.mu.Lock()
	n := len(c.wh.endpoints[app])
	c.wh.mu.Unlock()
	if n >= maxWebhookEndpoints {
		return WebhookEndpoint{}, Errf(CodeConflict, "app "+app+" has "+strconv.Itoa(n)+" webhook endpoints, the most allowed; delete one first")
	}
	return e, c.putEndpoint(ctx, &e, false)
}

// UpdateWebhookEndpoint changes an endpoint's fields given in in.
func (c *Core) UpdateWebhookEndpoint(ctx context.Context, app, id string, in WebhookEndpointInput) (WebhookEndpoint, error) {
	c.wh.writeMu.Lock()
	defer c.wh.writeMu.Unlock()
	old, err := c.webhookEndpoint(app, id)
	if err != nil {
		return WebhookEndpoint{}, err
	}
	e := *old
	e.Events = slices.Clone(old.Events)
	if err := c.applyEndpointInput(&e, in); err != nil {
		return WebhookEndpoint{}, err
	}
	e.UpdatedAt = c.nowMS()
	return e, c.putEndpoint(ctx, &e, false)
}

// DeleteWebhookEndpoint removes an endpoint. Its pending deliveries are
// marked failed when their turn comes.
func (c *Core) DeleteWebhookEndpoint(ctx context.Context, app, id string) error {
	c.wh.writeMu.Lock()
	defer c.wh.writeMu.Unlock()
	e, err := c.webhookEndpoint(app, id)
	if err != nil {
		return err
	}
	return c.putEndpoint(ctx, e, true)
}

func (c *Core) webhookEndpoint(app, id string) (*WebhookEndpoint, error) {
	c.wh.mu.Lock()
	defer c.wh.mu.Unlock()
	for _, e := range c.wh.endpoints[app] {
		if e.ID == id {
			return e, nil
		}
	}
	return nil, Errf(CodeNotFound, "no webhook endpoint "+strconv.Quote(clip(id, 64))+" in app "+clip(app, 64))
}

func (c *Core) applyEndpointInput(e *WebhookEndpoint, in WebhookEndpointInput) error {
	if in.URL != nil {
		if err := c.checkWebhookURL(*in.URL); err != nil {
			return err
		}
		e.URL = *in.URL
	}
	if in.Events != nil {
		if len(in.Events) == 0 {
			return Errf(CodeBadRequest, "events must name at least one event type (or \"*\")")
		}
		for _, t := range in.Events {
			if t != "*" && webhookBit(t) == 0 {
				return Errf(CodeBadRequest, "unknown event type "+strconv.Quote(clip(t, 64))+"; types are "+strings.Join(WebhookEventTypes, ", ")+" (or \"*\")")
			}
		}
		e.Events = slices.Clone(in.Events)
	}
	if in.Secret != nil {
		if s := *in.Secret; s != "" && (len(s) < 16 || len(s) > 256) {
			return Errf(CodeBadRequest, "secret must be 16-256 bytes (or empty to generate one)")
		}
		e.Secret = *in.Secret
		if e.Secret == "" {
			e.Secret = "whsec_" + newSecret()
		}
	}
	if in.Enabled != nil {
		e.Enabled = *in.Enabled
	}
	return nil
}

// checkWebhookURL checks an endpoint URL's shape, then the target-host
// rules (Config.CheckWebhookURL).
func (c *Core) checkWebhookURL(raw string) error {
	if len(raw) > 2048 {
		return Errf(CodeBadRequest, "url longer than 2048 bytes")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return Errf(CodeBadRequest, "url must be an absolute http:// or https:// URL without user info")
	}
	if c.cfg.CheckWebhookURL != nil {
		if err := c.cfg.CheckWebhookURL(raw); err != nil {
			return Errf(CodeBadRequest, "url refused: "+err.Error())
		}
	}
	return nil
}

// putEndpoint writes (or deletes) e and updates the in-memory table.
func (c *Core) putEndpoint(ctx context.Context, e *WebhookEndpoint, del bool) error {
	key := []byte(e.App + "\x00" + e.ID)
	b := &Batch{}
	if del {
		b.DelRecords = []RecordKey{{Kind: kindWebhookEndpoint, Key: key}}
	} else {
		v, err := json.Marshal(e)
		if err != nil {
			return err
		}
		b.Records = []Record{{Kind: kindWebhookEndpoint, Key: key, Value: v}}
	}
	if err := c.write(ctx, b); err != nil {
		return err
	}
	w := c.wh
	w.mu.Lock()
	defer w.mu.Unlock()
	eps := slices.DeleteFunc(slices.Clone(w.endpoints[e.App]), func(x *WebhookEndpoint) bool { return x.ID == e.ID })
	if !del {
		cp := *e
		eps = append(eps, &cp)
	}
	w.endpoints[e.App] = eps
	w.republish()
	return nil
}

// endpointsOf returns app's endpoints (shared, read-only values).
func (w *webhooks) endpointsOf(app string) []*WebhookEndpoint {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.endpoints[app]
}

// ---- signature

// SignWebhook is a delivery's signature: "v1=" and the hex HMAC-SHA256,
// keyed with the endpoint's secret, of the timestamp (unix seconds, as
// sent in X-Chatd-Timestamp), a dot, and the body.
func SignWebhook(secret string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(strconv.AppendInt(nil, timestamp, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

func beKey(v uint64) []byte {
	return []byte{byte(v >> 56), byte(v >> 48), byte(v >> 40), byte(v >> 32), byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

func beUint64(b []byte) uint64 {
	if len(b) < 8 {
		return 0
	}
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

// webhookMessageBits are the event types a message produces.
var webhookMessageBits = webhookBit(WebhookMessageCreated) | webhookBit(WebhookPushOffline)

// presenceData is user.online's and user.offline's data.
type presenceData struct {
	UID    string `json:"uid"`
	Reason string `json:"reason,omitempty"` // user.offline: OfflineDisconnected, OfflineServerStopped or OfflineRestart
}

// sessionCreatedData is session.created's data.
type sessionCreatedData struct {
	SessionID SessionID `json:"session_id"`
	Kind      string    `json:"kind"`         // private, group, system
	By        string    `json:"by,omitempty"` // who caused it; empty for a system session
	Members   []string  `json:"members"`
}

// messageRecalledData is message.recalled's data (msgops.go).
type messageRecalledData struct {
	SessionID SessionID `json:"session_id"`
	Seq       uint64    `json:"seq"`    // the message recalled
	OpSeq     uint64    `json:"op_seq"` // the op entry that recalled it
	By        string    `json:"by"`     // "": the host
	At        int64     `json:"at"`
	From      string    `json:"from"` // the message's sender
}

// messageEditedData is message.edited's data (msgops.go).
type messageEditedData struct {
	SessionID SessionID       `json:"session_id"`
	Seq       uint64          `json:"seq"`
	OpSeq     uint64          `json:"op_seq"`
	By        string          `json:"by"`
	At        int64           `json:"at"`
	EditCount uint32          `json:"edit_count"`
	Type      string          `json:"type"`
	Content   json.RawMessage `json:"content"`
}

// Customer service's events (service.go, service_actions.go,
// service_extras.go), each committed with the conversation's record.
// service.rated's data is the ServiceRating as stored.

// serviceQueuedData is service.queued's data.
type serviceQueuedData struct {
	SessionID SessionID `json:"session_id"`
	Shop      string    `json:"shop"`
	Customer  string    `json:"customer"`
	From      string    `json:"from,omitempty"` // the agent who had it (transferred, requeued)
	Reason    string    `json:"reason"`         // opened, reopened, transferred, requeued
	By        string    `json:"by"`             // the customer, an agent, "host" or "system"
	QueuedAt  int64     `json:"queued_at"`
}

// serviceAssignedData is service.assigned's data.
type serviceAssignedData struct {
	SessionID  SessionID `json:"session_id"`
	Shop       string    `json:"shop"`
	Customer   string    `json:"customer"`
	Agent      string    `json:"agent"`
	From       string    `json:"from,omitempty"` // transferred: the previous agent
	Reason     string    `json:"reason"`         // routed, claimed, transferred
	By         string    `json:"by"`
	QueuedAt   int64     `json:"queued_at,omitempty"` // when it waited in the queue until now
	AssignedAt int64     `json:"assigned_at"`
}

// serviceResolvedData is service.resolved's data.
type serviceResolvedData struct {
	SessionID  SessionID `json:"session_id"`
	Shop       string    `json:"shop"`
	Customer   string    `json:"customer"`
	Agent      string    `json:"agent,omitempty"` // who had it; empty when it was queued
	By         string    `json:"by"`
	AssignedAt int64     `json:"assigned_at,omitempty"`
	ResolvedAt int64     `json:"resolved_at"`
}

// Consultations' events (consult_service.go), each committed with the
// consultation's record.

// consultStartedData is consult.started's data.
type consultStartedData struct {
	SessionID     SessionID `json:"session_id"`
	Consultant    string    `json:"consultant"`
	Customer      string    `json:"customer"`
	Ref           string    `json:"ref,omitempty"`
	Op            string    `json:"op"` // created (start "now"), accept, first_reply
	By            string    `json:"by"`
	StartedAt     int64     `json:"started_at"`
	BoughtSeconds int64     `json:"bought_seconds"`
	FreeSeconds   int64     `json:"free_seconds"`
	Deadline      int64     `json:"deadline"`
}

// consultEndedData is consult.ended's data: the billing record as stored.
type consultEndedData struct {
	SessionID SessionID      `json:"session_id"`
	Op        string         `json:"op"` // end, time_up, expire, decline, cancel
	By        string         `json:"by"`
	Record    *ConsultRecord `json:"record"`
}
