package chat

import (
	"container/heap"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The webhook dispatcher (RunWebhooks) turns committed outbox events
// ("wh.ev" records, webhooks.go) into deliveries ("wh.dl" records, one per
// event and endpoint) and sends them. Every step is durable before the
// next: an event is deleted in the same commit that creates its
// deliveries, and a delivery is marked delivered after its POST answered
// 2xx. So a crash loses nothing, and repeats a delivery only if it fell
// between the POST and the commit that records it.

// WebhookSender makes one delivery's HTTP request: a POST of body to url
// with the given headers. It returns the response's status code, or an
// error when there was none (refused address, timeout, connection
// failure). ctx carries the attempt's timeout. internal/webhook
// implements it with net/http and the target-host rules.
type WebhookSender interface {
	Send(ctx context.Context, url string, h WebhookHeaders, body []byte) (status int, err error)
	// Call is Send that also returns the answer's body (at most 64 KiB):
	// the before-send hook's request (beforesend.go).
	Call(ctx context.Context, url string, h WebhookHeaders, body []byte) (status int, answer []byte, err error)
}

// WebhookHeaders are a delivery attempt's headers: X-Chatd-Delivery,
// X-Chatd-Event, X-Chatd-Timestamp and X-Chatd-Signature.
type WebhookHeaders struct {
	DeliveryID string
	Event      string
	Timestamp  int64 // unix seconds
	Signature  string
}

// WebhookConfig tunes the dispatcher. Zero values mean the defaults.
type WebhookConfig struct {
	// Sender makes the HTTP requests. Required.
	Sender WebhookSender
	// Timeout bounds one attempt. Zero means 10 s.
	Timeout time.Duration
	// RetryFor is how long a delivery is retried after its first attempt
	// before it is marked failed. Zero means 24 h.
	RetryFor time.Duration
	// RetryBase is the wait before the first retry; each further retry
	// doubles it, up to an hour, each wait then drawn at random from its
	// upper half (jitter). Zero means 5 s.
	RetryBase time.Duration
	// Concurrency caps one endpoint's attempts in flight. Zero means 4.
	Concurrency int
	// MaxOutbox bounds the events waiting to be fanned out plus the
	// deliveries pending; past it new events are not written (counted in
	// WebhookStats.Dropped). Zero means 100000.
	MaxOutbox int
	// PushDebounce is the window that folds a recipient's offline pushes:
	// the first message to an offline user opens it, the push.offline
	// event (with every message of the window) leaves when it ends. Zero
	// means 2 s.
	PushDebounce time.Duration
	// Keep is how long finished (delivered or failed) deliveries stay
	// listed. Zero means 7 days.
	Keep time.Duration
	// Tick is how often the dispatcher looks at its clock for due retries
	// and pushes. Zero means 100 ms.
	Tick time.Duration
}

func (w *WebhookConfig) fill() {
	if w.Timeout <= 0 {
		w.Timeout = 10 * time.Second
	}
	if w.RetryFor <= 0 {
		w.RetryFor = 24 * time.Hour
	}
	if w.RetryBase <= 0 {
		w.RetryBase = 5 * time.Second
	}
	if w.Concurrency <= 0 {
		w.Concurrency = 4
	}
	if w.MaxOutbox <= 0 {
		w.MaxOutbox = 100000
	}
	if w.PushDebounce <= 0 {
		w.PushDebounce = 2 * time.Second
	}
	if w.Keep <= 0 {
		w.Keep = 7 * 24 * time.Hour
	}
	if w.Tick <= 0 {
		w.Tick = 100 * time.Millisecond
	}
}

// Delivery statuses.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// WebhookDelivery is one event for one endpoint, and how sending it went.
type WebhookDelivery struct {
	ID           string          `json:"id"`
	App          string          `json:"app"`
	Endpoint     string          `json:"endpoint"`
	EventID      string          `json:"event_id"`
	Type         string          `json:"type"`
	Status       string          `json:"status"`
	Attempts     int             `json:"attempts"`
	CreatedAt    int64           `json:"created_at"`              // unix ms
	WindowStart  int64           `json:"window_start"`            // unix ms: retries end RetryFor after it (reset by a redelivery)
	NextAt       int64           `json:"next_at,omitempty"`       // unix ms, while pending
	LastAttempt  int64           `json:"last_attempt,omitempty"`  // unix ms
	ResponseCode int             `json:"response_code,omitempty"` // of the last attempt; 0: no response
	Error        string          `json:"error,omitempty"`         // of the last attempt
	DeliveredAt  int64           `json:"delivered_at,omitempty"`
	Body         json.RawMessage `json:"body,omitempty"`

	key  []byte // the record key
	idx  int    // heap index; -1 when not queued
	redo bool   // redelivery asked while an attempt was in flight: queue again once it ends
}

// WebhookStats are the dispatcher's figures (/metrics).
type WebhookStats struct {
	Delivered uint64            // deliveries answered 2xx
	Failed    uint64            // deliveries given up
	Attempts  uint64            // HTTP attempts
	Retries   uint64            // failed attempts scheduled again
	Dropped   uint64            // events not written: outbox full (or journal full for presence)
	Depth     int64             // events not fanned out plus deliveries pending
	Latency   HistogramSnapshot // attempt durations, seconds

	HookCalls     uint64            // before-send hook calls
	HookRejected  uint64            // messages the hook rejected
	HookRewritten uint64            // messages the hook rewrote
	HookFallbacks uint64            // calls that timed out or failed (the fallback applied)
	HookLatency   HistogramSnapshot // hook call durations, seconds
}

// WebhookStats returns the dispatcher's counters.
func (c *Core) WebhookStats() WebhookStats {
	w := c.wh
	return WebhookStats{Delivered: w.delivered.Load(), Failed: w.failed.Load(), Attempts: w.attempts.Load(),
		Retries: w.retries.Load(), Dropped: w.dropped.Load(), Depth: w.depth.Load(), Latency: w.latency.Snapshot(),
		HookCalls: w.hookCalls.Load(), HookRejected: w.hookRejected.Load(), HookRewritten: w.hookRewritten.Load(),
		HookFallbacks: w.hookFallbacks.Load(), HookLatency: w.hookLatency.Snapshot()}
}

// TopicWebhook is the live-stream topic of delivery attempts.
const TopicWebhook = "webhook"

// ---- the dispatcher

type attemptResult struct {
	d       *WebhookDelivery
	status  int
	err     error
	elapsed time.Duration
	at      time.Time
}

type pushKey struct{ app, uid string }

// pushBuf gathers one offline recipient's messages during a debounce
// window.
type pushBuf struct {
	first    time.Time // window start (dispatcher clock)
	firstEv  uint64    // the first event's id: names the push delivery
	events   []uint64  // message events folded in
	messages []pushMessage
	count    int
}

type pushMessage struct {
	SessionID SessionID `json:"session_id"`
	Seq       uint64    `json:"seq"`
	MsgID     string    `json:"msg_id"`
	From      string    `json:"from"`
	Type      string    `json:"type"`
	Preview   string    `json:"preview"`
	CreatedAt int64     `json:"created_at"`
}

// maxPushMessages caps the messages one push.offline event lists (the
// count says how many there were).
const maxPushMessages = 10

// redeliverReq asks the dispatcher to send deliveries again.
type redeliverReq struct {
	app      string
	ids      []string // delivery ids, or
	from, to uint64   // an event-id range (inclusive)
	endpoint string   // with the range: only this endpoint's ("" all)
	failed   bool     // with the range: only failed ones
	res      chan redeliverRes
}

type redeliverRes struct {
	n   int
	err error
}

type dispatcher struct {
	c   *Core
	cfg WebhookConfig
	now func() time.Time

	queues   map[string]*delivHeap       // endpoint id → its pending deliveries not in flight, by NextAt
	pending  map[string]*WebhookDelivery // key → pending delivery (queued or in flight)
	inflight map[string]int              // endpoint id → attempts in flight
	results  chan attemptResult
	wg       sync.WaitGroup
	dirty    map[string]*WebhookDelivery // changed deliveries to write

	pushes  map[pushKey]*pushBuf
	evRefs  map[uint64]int // message event → push windows still holding it
	lastKey []byte         // the newest event fanned out
	pruneAt time.Time
}

// RunWebhooks runs the dispatcher until ctx ends. Run it beside Run, and
// stop it before Run's ctx ends (it writes through the journal). On a
// shared store every node runs it and it dispatches only while this node
// holds the cluster's "webhooks" lease (whlease.go).
func (c *Core) RunWebhooks(ctx context.Context, cfg WebhookConfig) error {
	if cfg.Sender == nil {
		return errors.New("chat: RunWebhooks: nil Sender")
	}
	cfg.fill()
	if c.shared != nil {
		return c.runWebhooksLeased(ctx, cfg) // whlease.go: on one node of the cluster at a time
	}
	return c.runDispatcher(ctx, cfg)
}

// runDispatcher is RunWebhooks' dispatcher, until ctx ends.
func (c *Core) runDispatcher(ctx context.Context, cfg WebhookConfig) error {
	d := &dispatcher{c: c, cfg: cfg, now: c.cfg.Now,
		pending: make(map[string]*WebhookDelivery), inflight: make(map[string]int), queues: make(map[string]*delivHeap),
		results: make(chan attemptResult, 256), dirty: make(map[string]*WebhookDelivery),
		pushes: make(map[pushKey]*pushBuf), evRefs: make(map[uint64]int)}
	c.wh.max.Store(int64(cfg.MaxOutbox))
	c.wh.setSender(&cfg.Sender) // the before-send hooks call through it
	if err := d.load(ctx); err != nil {
		return err
	}
	c.wh.running.Store(true)
	sendCtx, cancel := context.WithCancel(context.Background())
	defer func() {
		c.wh.running.Store(false)
		cancel()
		// Record what the attempts in flight learnt, so a delivered one
		// is not sent again after the restart.
		go func() { d.wg.Wait(); close(d.results) }()
		for r := range d.results {
			if r.err != nil && errors.Is(r.err, context.Canceled) {
				d.release(r.d) // cut short by the stop: still pending, sent again after the restart
				continue
			}
			d.apply(r)
		}
		d.flush(context.Background())
	}()
	t := time.NewTicker(cfg.Tick)
	defer t.Stop()
	d.step(sendCtx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.wh.kick:
		case <-t.C:
		case r := <-d.results:
			d.apply(r)
			for len(d.results) > 0 {
				d.apply(<-d.results)
			}
		case req := <-c.wh.redeliver:
			n, err := d.redeliver(ctx, req)
			req.res <- redeliverRes{n, err}
		}
		d.step(sendCtx)
	}
}

// step fans out new events, closes due push windows, writes the changes,
// and starts due attempts.
func (d *dispatcher) step(sendCtx context.Context) {
	ctx := context.Background()
	now := d.now()
	d.fan(ctx, now)
	d.flushPushes(ctx, now)
	d.flush(ctx)
	d.dispatch(sendCtx, now)
	if now.Sub(d.pruneAt) > time.Minute {
		d.pruneAt = now
		d.prune(ctx, now)
	}
}

// load reads the pending deliveries and sizes the outbox after a start.
func (d *dispatcher) load(ctx context.Context) error {
	var after []byte
	n := int64(0)
	for {
		recs, err := d.c.store.ScanRecords(ctx, kindWebhookDelivery, nil, after, 1000, false)
		if err != nil {
			return err
		}
		for _, r := range recs {
			var dl WebhookDelivery
			if json.Unmarshal(r.Value, &dl) != nil || dl.Status != DeliveryPending {
				continue
			}
			dl.key = r.Key
			d.pending[string(r.Key)] = &dl
			d.enqueue(&dl)
			n++
		}
		if len(recs) < 1000 {
			break
		}
		after = recs[len(recs)-1].Key
	}
	d.c.wh.depth.Add(n) // the stored events were counted by New
	return nil
}

// plan is one fan-out or push step's writes, applied to memory after
// they are durable.
type plan struct {
	b      Batch
	dels   []*WebhookDelivery
	pushes []func()
}

// fan turns committed outbox events into deliveries (and push windows).
//
// On a shared store it reads the whole outbox each time: event ids are
// each node's own clock, so another node may commit an event below the
// last one fanned out. The outbox holds only events not fanned out yet
// and those push windows hold (skipped here), so the scan is short; and
// the outbox it sees sizes the depth, which other nodes' events change.
func (d *dispatcher) fan(ctx context.Context, now time.Time) {
	shared := d.c.shared != nil
	if shared {
		d.lastKey = nil
	}
	left := 0 // shared: the events that stay in the outbox
	for {
		recs, err := d.c.store.ScanRecords(ctx, kindWebhookEvent, nil, d.lastKey, 500, false)
		if err != nil {
			d.c.cfg.LogError("webhooks: reading the outbox", err)
			return
		}
		var p plan
		for _, r := range recs {
			if shared && d.evRefs[beUint64(r.Key)] > 0 {
				continue // in a push window already (counted as left below)
			}
			d.fanOne(ctx, &p, r, now)
		}
		if err := d.commit(ctx, &p); err != nil {
			d.c.cfg.LogError("webhooks: writing deliveries", err)
			return
		}
		if shared {
			left += len(recs) - len(p.b.DelRecords)
		}
		if len(recs) > 0 {
			d.lastKey = recs[len(recs)-1].Key
		}
		if len(recs) < 500 {
			break
		}
	}
	if shared {
		d.c.wh.depth.Store(int64(left + len(d.pending)))
	}
}

func (d *dispatcher) fanOne(ctx context.Context, p *plan, r Record, now time.Time) {
	id := beUint64(r.Key)
	var ev outboxEvent
	if err := json.Unmarshal(r.Value, &ev); err != nil {
		d.c.cfg.LogError("webhooks: decoding outbox event "+strconv.FormatUint(id, 10), err)
		p.b.DelRecords = append(p.b.DelRecords, RecordKey{Kind: kindWebhookEvent, Key: r.Key})
		p.pushes = append(p.pushes, func() { d.c.wh.depth.Add(-1) })
		return
	}
	eps := d.c.wh.endpointsOf(ev.App)
	var data json.RawMessage
	var msg *Message
	if ev.Type == WebhookMessageCreated {
		ms, err := d.c.store.Messages(ctx, ev.Session, ev.Seq, ev.Seq, 1, false)
		if err == nil && len(ms) == 1 {
			msg = &ms[0]
		}
		data = messageCreatedData(msg, ev.Session, ev.Seq, ev.Online, ev.Offline)
	} else {
		data = ev.Data
	}
	for _, e := range eps {
		if !e.wants(ev.Type) {
			continue
		}
		p.add(d, d.newDelivery(ctx, ev.App, e.ID, id, "", ev.Type, ev.At, data, now))
	}
	held := 0
	if ev.Type == WebhookMessageCreated && msg != nil && len(ev.Offline) > 0 && d.wantsPush(eps) {
		preview, _ := validateContent(msg.Type, msg.Content, 1<<30)
		pm := pushMessage{SessionID: msg.Session, Seq: msg.Seq, MsgID: MsgID(msg.Session, msg.Seq), From: msg.From,
			Type: msg.Type, Preview: preview, CreatedAt: msg.CreatedAt}
		for _, uid := range ev.Offline {
			k := pushKey{ev.App, uid}
			held++
			p.pushes = append(p.pushes, func() {
				b := d.pushes[k]
				if b == nil {
					b = &pushBuf{first: now, firstEv: id}
					d.pushes[k] = b
				}
				b.events = append(b.events, id)
				b.count++
				if len(b.messages) < maxPushMessages {
					b.messages = append(b.messages, pm)
				} else {
					b.messages[maxPushMessages-1] = pm // keep the newest last
				}
			})
		}
	}
	if held > 0 {
		p.pushes = append(p.pushes, func() { d.evRefs[id] += held })
		return
	}
	p.b.DelRecords = append(p.b.DelRecords, RecordKey{Kind: kindWebhookEvent, Key: r.Key})
	p.pushes = append(p.pushes, func() { d.c.wh.depth.Add(-1) })
}

func (d *dispatcher) wantsPush(eps []*WebhookEndpoint) bool {
	for _, e := range eps {
		if e.wants(WebhookPushOffline) {
			return true
		}
	}
	return false
}

// newDelivery builds a pending delivery, or nil when it already exists
// (the event was fanned out before a crash that kept the event).
func (d *dispatcher) newDelivery(ctx context.Context, app, ep string, evID uint64, suffix, typ string, at int64, data json.RawMessage, now time.Time) *WebhookDelivery {
	id := strconv.FormatUint(evID, 10) + "." + ep + suffix
	key := append([]byte(app+"\x00"), beKey(evID)...)
	key = append(key, id...)
	if _, ok := d.pending[string(key)]; ok {
		return nil
	}
	if _, err := d.c.store.Record(ctx, kindWebhookDelivery, key); err == nil {
		return nil
	}
	body, _ := json.Marshal(struct {
		ID        string          `json:"id"`
		EventID   string          `json:"event_id"`
		Type      string          `json:"type"`
		App       string          `json:"app"`
		CreatedAt int64           `json:"created_at"`
		Data      json.RawMessage `json:"data"`
	}{id, strconv.FormatUint(evID, 10), typ, app, at, data})
	ms := now.UnixMilli()
	return &WebhookDelivery{ID: id, App: app, Endpoint: ep, EventID: strconv.FormatUint(evID, 10), Type: typ,
		Status: DeliveryPending, CreatedAt: ms, WindowStart: ms, NextAt: ms, Body: body, key: key, idx: -1}
}

func (p *plan) add(d *dispatcher, dl *WebhookDelivery) {
	if dl == nil {
		return
	}
	v, _ := json.Marshal(dl)
	p.b.Records = append(p.b.Records, Record{Kind: kindWebhookDelivery, Key: dl.key, Value: v})
	p.dels = append(p.dels, dl)
}

// commit writes p and applies it to memory.
func (d *dispatcher) commit(ctx context.Context, p *plan) error {
	if !p.b.Empty() {
		if err := d.c.write(ctx, &p.b); err != nil {
			return err
		}
	}
	for _, dl := range p.dels {
		d.pending[string(dl.key)] = dl
		d.enqueue(dl)
		d.c.wh.depth.Add(1)
	}
	for _, f := range p.pushes {
		f()
	}
	return nil
}

// flushPushes closes the push windows that are due: one push.offline
// delivery per recipient and endpoint, and the message events they held
// are deleted in the same commit.
func (d *dispatcher) flushPushes(ctx context.Context, now time.Time) {
	var p plan
	var done []pushKey
	for k, b := range d.pushes {
		if now.Sub(b.first) < d.cfg.PushDebounce {
			continue
		}
		data, _ := json.Marshal(struct {
			UID      string        `json:"uid"`
			Count    int           `json:"count"`
			Messages []pushMessage `json:"messages"`
		}{k.uid, b.count, b.messages})
		sum := hex.EncodeToString([]byte(k.uid))
		if len(sum) > 128 {
			sum = sum[:128]
		}
		for _, e := range d.c.wh.endpointsOf(k.app) {
			if e.wants(WebhookPushOffline) {
				p.add(d, d.newDelivery(ctx, k.app, e.ID, b.firstEv, "."+sum, WebhookPushOffline, now.UnixMilli(), data, now))
			}
		}
		for _, id := range b.events {
			if d.evRefs[id]--; d.evRefs[id] <= 0 {
				delete(d.evRefs, id)
				p.b.DelRecords = append(p.b.DelRecords, RecordKey{Kind: kindWebhookEvent, Key: beKey(id)})
				p.pushes = append(p.pushes, func() { d.c.wh.depth.Add(-1) })
			}
		}
		done = append(done, k)
	}
	if len(done) == 0 {
		return
	}
	if err := d.commit(ctx, &p); err != nil {
		// Undo the reference counts; the windows are retried next tick.
		for _, k := range done {
			for _, id := range d.pushes[k].events {
				d.evRefs[id]++
			}
		}
		d.c.cfg.LogError("webhooks: writing offline pushes", err)
		return
	}
	for _, k := range done {
		delete(d.pushes, k)
	}
}

// enqueue queues a pending delivery on its endpoint's heap.
func (d *dispatcher) enqueue(dl *WebhookDelivery) {
	q := d.queues[dl.Endpoint]
	if q == nil {
		q = &delivHeap{}
		d.queues[dl.Endpoint] = q
	}
	heap.Push(q, dl)
}

// dispatch starts the due attempts that their endpoints have room for.
// Each endpoint has its own queue, so a backlog behind a slow or disabled
// endpoint costs nothing per pass: its queue is not touched while it has
// no room.
func (d *dispatcher) dispatch(ctx context.Context, now time.Time) {
	ms := now.UnixMilli()
	for id, q := range d.queues {
		if q.Len() == 0 {
			delete(d.queues, id)
			continue
		}
		if (*q)[0].NextAt > ms {
			continue
		}
		e := d.endpoint((*q)[0])
		if e != nil && !e.Enabled {
			continue // held while disabled
		}
		for q.Len() > 0 && (*q)[0].NextAt <= ms && (e == nil || d.inflight[e.ID] < d.cfg.Concurrency) {
			dl := heap.Pop(q).(*WebhookDelivery)
			if e == nil {
				dl.Status, dl.Error, dl.NextAt = DeliveryFailed, "endpoint deleted", 0
				d.finish(dl)
				continue
			}
			d.inflight[e.ID]++
			d.wg.Add(1)
			go d.attempt(ctx, e, dl)
		}
	}
}

func (d *dispatcher) endpoint(dl *WebhookDelivery) *WebhookEndpoint {
	for _, e := range d.c.wh.endpointsOf(dl.App) {
		if e.ID == dl.Endpoint {
			return e
		}
	}
	return nil
}

// attempt makes one HTTP attempt; it runs on a goroutine of its own and
// reads only dl's immutable fields.
func (d *dispatcher) attempt(ctx context.Context, e *WebhookEndpoint, dl *WebhookDelivery) {
	defer d.wg.Done()
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	ts := time.Now().Unix()
	h := WebhookHeaders{DeliveryID: dl.ID, Event: dl.Type, Timestamp: ts, Signature: SignWebhook(e.Secret, ts, dl.Body)}
	start := time.Now()
	status, err := d.cfg.Sender.Send(ctx, e.URL, h, dl.Body)
	d.results <- attemptResult{d: dl, status: status, err: err, elapsed: time.Since(start), at: d.now()}
}

// release ends an attempt in flight for its endpoint's count.
func (d *dispatcher) release(dl *WebhookDelivery) {
	if n := d.inflight[dl.Endpoint] - 1; n > 0 {
		d.inflight[dl.Endpoint] = n
	} else {
		delete(d.inflight, dl.Endpoint)
	}
}

// apply records an attempt's outcome.
func (d *dispatcher) apply(r attemptResult) {
	dl := r.d
	w := d.c.wh
	d.release(dl)
	if d.pending[string(dl.key)] != dl {
		return // redelivered meanwhile: that copy rules
	}
	w.attempts.Add(1)
	w.latency.Observe(uint64(r.elapsed))
	ms := r.at.UnixMilli()
	dl.Attempts++
	dl.LastAttempt = ms
	dl.ResponseCode = r.status
	dl.Error = ""
	if r.err != nil {
		dl.Error = clip(r.err.Error(), 300)
	} else if r.status < 200 || r.status > 299 {
		dl.Error = "answered HTTP " + strconv.Itoa(r.status)
	}
	detail := "delivery " + dl.ID + " to " + dl.Endpoint + ": "
	switch {
	case dl.Error == "":
		dl.Status, dl.DeliveredAt, dl.NextAt = DeliveryDelivered, ms, 0
		w.delivered.Add(1)
		detail += "delivered, HTTP " + strconv.Itoa(r.status)
	case time.Duration(ms-dl.WindowStart)*time.Millisecond >= d.cfg.RetryFor:
		dl.Status, dl.NextAt = DeliveryFailed, 0
		w.failed.Add(1)
		detail += "failed for good after " + strconv.Itoa(dl.Attempts) + " attempts: " + dl.Error
	default:
		dl.NextAt = ms + d.backoff(dl.Attempts).Milliseconds()
		w.retries.Add(1)
		detail += "attempt " + strconv.Itoa(dl.Attempts) + " failed (" + dl.Error + "), retried in " +
			time.Duration((dl.NextAt-ms)*int64(time.Millisecond)).String()
	}
	d.c.publish(Event{Topic: TopicWebhook, App: dl.App, Type: dl.Type, Detail: detail})
	if dl.redo {
		dl.redo = false
		dl.Status, dl.NextAt, dl.WindowStart = DeliveryPending, ms, ms
	}
	if dl.Status == DeliveryPending {
		d.dirty[string(dl.key)] = dl
		d.enqueue(dl)
		return
	}
	d.finish(dl)
}

// finish takes a delivered or failed delivery out of the pending set.
func (d *dispatcher) finish(dl *WebhookDelivery) {
	delete(d.pending, string(dl.key))
	d.dirty[string(dl.key)] = dl
	d.c.wh.depth.Add(-1)
}

// backoff is the wait after the n-th failed attempt: RetryBase doubled
// n-1 times, at most an hour, drawn from its upper half.
func (d *dispatcher) backoff(n int) time.Duration {
	w := d.cfg.RetryBase
	for i := 1; i < n && w < time.Hour; i++ {
		w *= 2
	}
	w = min(w, time.Hour)
	return w/2 + time.Duration(rand.Int64N(int64(w/2)+1))
}

// flush writes the changed deliveries.
func (d *dispatcher) flush(ctx context.Context) {
	if len(d.dirty) == 0 {
		return
	}
	b := &Batch{Records: make([]Record, 0, len(d.dirty))}
	for _, dl := range d.dirty {
		v, _ := json.Marshal(dl)
		b.Records = append(b.Records, Record{Kind: kindWebhookDelivery, Key: dl.key, Value: v})
	}
	if err := d.c.write(ctx, b); err != nil {
		d.c.cfg.LogError("webhooks: recording delivery results (retried)", err)
		return
	}
	clear(d.dirty)
}

// prune deletes finished deliveries older than Keep.
func (d *dispatcher) prune(ctx context.Context, now time.Time) {
	cut := now.Add(-d.cfg.Keep).UnixMilli()
	apps, err := d.c.store.Apps(ctx)
	if err != nil {
		return
	}
	var dels []RecordKey
	for _, a := range apps {
		recs, err := d.c.store.ScanRecords(ctx, kindWebhookDelivery, []byte(a.ID+"\x00"), nil, 1000, false)
		if err != nil {
			return
		}
		for _, r := range recs {
			var dl WebhookDelivery
			if json.Unmarshal(r.Value, &dl) != nil || dl.CreatedAt >= cut {
				break
			}
			if dl.Status != DeliveryPending {
				dels = append(dels, RecordKey{Kind: kindWebhookDelivery, Key: r.Key})
			}
		}
	}
	if len(dels) > 0 {
		if err := d.c.write(ctx, &Batch{DelRecords: dels}); err != nil {
			d.c.cfg.LogError("webhooks: pruning old deliveries", err)
		}
	}
}

// redeliver makes the asked deliveries pending and due now.
func (d *dispatcher) redeliver(ctx context.Context, q redeliverReq) (int, error) {
	var keys [][]byte
	prefix := []byte(q.app + "\x00")
	if len(q.ids) > 0 {
		for _, id := range q.ids {
			ev, _, ok := strings.Cut(id, ".")
			n, err := strconv.ParseUint(ev, 10, 64)
			if !ok || err != nil {
				return 0, Errf(CodeBadRequest, "delivery id "+strconv.Quote(clip(id, 80))+" is not one chatd made")
			}
			keys = append(keys, append(append(append([]byte(nil), prefix...), beKey(n)...), id...))
		}
	} else {
		if q.to < q.from {
			return 0, Errf(CodeBadRequest, "to_event is before from_event")
		}
		after := append(append([]byte(nil), prefix...), beKey(q.from)...)
		recs, err := d.c.store.ScanRecords(ctx, kindWebhookDelivery, prefix, after[:len(after)-1], 1001, false)
		if err != nil {
			return 0, err
		}
		for _, r := range recs {
			if beUint64(r.Key[len(prefix):]) < q.from {
				continue
			}
			if beUint64(r.Key[len(prefix):]) > q.to {
				break
			}
			keys = append(keys, r.Key)
		}
		if len(keys) > 1000 {
			return 0, Errf(CodeBadRequest, "more than 1000 deliveries in that range; narrow it")
		}
	}
	now := d.now().UnixMilli()
	n := 0
	for _, k := range keys {
		if dl := d.pending[string(k)]; dl != nil {
			if dl.idx >= 0 {
				dl.NextAt, dl.WindowStart = now, now
				heap.Fix(d.queues[dl.Endpoint], dl.idx)
			} else {
				dl.redo = true // in flight
			}
			n++
			continue
		}
		v, err := d.c.store.Record(ctx, kindWebhookDelivery, k)
		if errors.Is(err, ErrNotFound) {
			if len(q.ids) > 0 {
				return n, Errf(CodeNotFound, "no delivery "+strconv.Quote(clip(string(k[len(prefix)+8:]), 80)))
			}
			continue
		}
		if err != nil {
			return n, err
		}
		var dl WebhookDelivery
		if err := json.Unmarshal(v, &dl); err != nil {
			return n, err
		}
		if q.endpoint != "" && dl.Endpoint != q.endpoint || q.failed && dl.Status != DeliveryFailed {
			continue
		}
		dl.key, dl.idx = k, -1
		dl.Status, dl.NextAt, dl.WindowStart = DeliveryPending, now, now
		d.pending[string(k)] = &dl
		d.dirty[string(k)] = &dl
		d.enqueue(&dl)
		d.c.wh.depth.Add(1)
		n++
	}
	return n, nil
}

// RedeliverWebhooks sends deliveries again: those named by ids, or those
// of the events from..to (inclusive; optionally only endpoint's, only
// failed ones). Each keeps its id and body. It returns how many were
// queued.
func (c *Core) RedeliverWebhooks(ctx context.Context, app string, ids []string, from, to uint64, endpoint string, failedOnly bool) (int, error) {
	if _, err := c.App(ctx, app); err != nil {
		return 0, err
	}
	if len(ids) == 0 && from == 0 {
		return 0, Errf(CodeBadRequest, "name delivery ids, or an event range (from_event, to_event)")
	}
	if len(ids) > 1000 {
		return 0, Errf(CodeBadRequest, "at most 1000 delivery ids at once")
	}
	if !c.wh.running.Load() {
		if c.wh.standby.Load() {
			return 0, Errf(CodeUnavailable, "another node of the cluster runs the webhook deliveries (it holds the webhooks lease); "+
				"send the redelivery to that node, or retry")
		}
		return 0, Errf(CodeUnavailable, "the webhook dispatcher is not running")
	}
	req := redeliverReq{app: app, ids: ids, from: from, to: to, endpoint: endpoint, failed: failedOnly, res: make(chan redeliverRes, 1)}
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case c.wh.redeliver <- req:
	case <-t.C:
		return 0, Errf(CodeUnavailable, "the webhook dispatcher is busy or stopping; retry")
	case <-ctx.Done():
		return 0, Errf(CodeUnavailable, "request cancelled")
	}
	select {
	case r := <-req.res:
		return r.n, r.err
	case <-ctx.Done():
		return 0, Errf(CodeUnavailable, "request cancelled")
	}
}

// WebhookDeliveries lists app's deliveries, newest event first: up to
// limit (at most 500), older than the delivery `before` (a delivery id;
// "" from the newest), optionally only those of one status.
func (c *Core) WebhookDeliveries(ctx context.Context, app string, limit int, before, status string) ([]WebhookDelivery, error) {
	if _, err := c.App(ctx, app); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 500 {
		limit = min(max(limit, 50), 500)
	}
	switch status {
	case "", DeliveryPending, DeliveryDelivered, DeliveryFailed:
	default:
		return nil, Errf(CodeBadRequest, "status must be pending, delivered or failed")
	}
	prefix := []byte(app + "\x00")
	var after []byte
	if before != "" {
		ev, _, _ := strings.Cut(before, ".")
		n, err := strconv.ParseUint(ev, 10, 64)
		if err != nil {
			return nil, Errf(CodeBadRequest, "before is not a delivery id")
		}
		after = append(append(append([]byte(nil), prefix...), beKey(n)...), before...)
	}
	out := []WebhookDelivery{}
	for len(out) < limit {
		recs, err := c.store.ScanRecords(ctx, kindWebhookDelivery, prefix, after, limit, true)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			var dl WebhookDelivery
			if json.Unmarshal(r.Value, &dl) != nil || (status != "" && dl.Status != status) {
				continue
			}
			if len(out) < limit {
				out = append(out, dl)
			}
		}
		if len(recs) < limit {
			break
		}
		after = recs[len(recs)-1].Key
	}
	return out, nil
}

// messageCreatedData is message.created's data.
func messageCreatedData(m *Message, sid SessionID, seq uint64, online, offline []string) json.RawMessage {
	type recipient struct {
		UID     string `json:"uid"`
		Offline bool   `json:"offline"`
	}
	rs := make([]recipient, 0, len(online)+len(offline))
	for _, u := range online {
		rs = append(rs, recipient{u, false})
	}
	for _, u := range offline {
		rs = append(rs, recipient{u, true})
	}
	type msgView struct {
		Message
		MsgID string `json:"msg_id"`
	}
	var mv *msgView
	if m != nil {
		mv = &msgView{Message: *m, MsgID: MsgID(m.Session, m.Seq)}
	}
	b, _ := json.Marshal(struct {
		SessionID  SessionID   `json:"session_id"`
		Seq        uint64      `json:"seq"`
		Message    *msgView    `json:"message"`
		Recipients []recipient `json:"recipients"`
	}{sid, seq, mv, rs})
	return b
}

// delivHeap orders pending deliveries by NextAt.
type delivHeap []*WebhookDelivery

func (h delivHeap) Len() int           { return len(h) }
func (h delivHeap) Less(i, j int) bool { return h[i].NextAt < h[j].NextAt }
func (h delivHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *delivHeap) Push(x any) {
	dl := x.(*WebhookDelivery)
	dl.idx = len(*h)
	*h = append(*h, dl)
}
func (h *delivHeap) Pop() any {
	old := *h
	dl := old[len(old)-1]
	old[len(old)-1] = nil
	dl.idx = -1
	*h = old[:len(old)-1]
	return dl
}
