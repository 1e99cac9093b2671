package chat

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"
)

// The consultation service: the core's live consultations, the actions of
// the host and of the two members, the clock's wake-ups, and the events.
// The rules themselves are in consult.go (Consultation.Apply), the
// persistence in consult_store.go.
//
// Who owns what:
//   - consultState.m and .live: consultState.mu, a leaf.
//   - consultEntry.k, .lastRem: consultEntry.mu, held across
//     the journal write of a change (like sess.mu), so that the stored
//     state and the memory never disagree in order; the clock's goroutine
//     takes it too, briefly, and never waits on the journal under it.
//   - the timer heap: consultTimers.mu, a leaf.
//   - consultState.gate: held for reading by every change of a
//     consultation on this node until it is durable (create, an action,
//     the clock's ends, the stop's checkpoint), for writing by a load
//     (consult_takeover.go). Taken before consultEntry.mu; a change that
//     finds its entry gone (replaced by a load) looks it up again.

// KindConsult is a timed consultation's session: the consultant and the
// customer, metered by the consultation clock. (4 is left for customer
// service sessions.)
const KindConsult Kind = 5

// ConsultConfig tunes consultations. Zero values mean the defaults.
type ConsultConfig struct {
	ConsultClock
	// Rounding is how new consultations turn billed seconds into an
	// amount. Zero means RoundPerMinute (every started minute).
	Rounding Rounding
	// MaxPerConsultant caps one consultant's consultations that are
	// pending, active or paused at once. Zero means 10.
	MaxPerConsultant int
	// PendingTTL is how long a consultation may wait unstarted when the
	// host gives no expires_in. Zero means 30 minutes.
	PendingTTL time.Duration
}

func (cc *ConsultConfig) fill() {
	cc.ConsultClock.fill()
	if cc.Rounding == 0 {
		cc.Rounding = RoundPerMinute
	}
	if cc.MaxPerConsultant <= 0 {
		cc.MaxPerConsultant = 10
	}
	if cc.PendingTTL <= 0 {
		cc.PendingTTL = 30 * time.Minute
	}
}

type consultState struct {
	cfg    ConsultConfig
	every  int64   // ms
	warn   []int64 // ms, descending
	timers *consultTimers

	gate sync.RWMutex                // changes (read) against a takeover's load (write)
	mu   sync.Mutex                  // guards m and live; a leaf
	m    map[SessionID]*consultEntry // open consultations (pending, active, paused)
	live map[string]int              // app\x00consultant → consultations not final
}

type consultEntry struct {
	s  *sess
	mu sync.Mutex // guards k, lastRem and gone; held across the write of a change
	k  Consultation
	// gone: a load (consult_takeover.go) replaced this entry; a change
	// that finds it so looks the consultation up again.
	gone bool
	// lastRem is the remaining ms when the clock last looked (or at the
	// last change): the count-down and the warnings are due when the
	// remaining time crosses their marks since then.
	lastRem int64
}

func (st *consultState) init(cfg ConsultConfig) {
	cfg.fill()
	st.cfg = cfg
	st.every = cfg.Every.Milliseconds()
	st.warn = cfg.ConsultClock.warningsMS()
	st.timers = newConsultTimers()
	st.m = make(map[SessionID]*consultEntry)
	st.live = make(map[string]int)
}

// ConsultInput is what the host gives to create a consultation.
type ConsultInput struct {
	Consultant string `json:"consultant"`
	Customer   string `json:"customer"`
	// Seconds is the time bought: 1 s to 30 days.
	Seconds int64 `json:"seconds"`
	// FreeSeconds is the free allowance, consumed before paid time. Nil
	// means the consultant's allowance that this customer has not used
	// yet (ConsultantSettings).
	FreeSeconds    *int64    `json:"free_seconds,omitempty"`
	PricePerMinute int64     `json:"price_per_minute"`
	Currency       string    `json:"currency"`
	Start          StartRule `json:"start"`      // zero means accept
	ExpiresIn      int64     `json:"expires_in"` // seconds it may wait unstarted; 0: the default
	Ref            string    `json:"ref"`
}

// ConsultView is a consultation as the API shows it: the stored state
// plus the clock's figures at the time of the answer.
type ConsultView struct {
	Consultation
	RemainingSeconds int64 `json:"remaining_seconds"`
	UsedSeconds      int64 `json:"used_seconds"`
	Deadline         int64 `json:"deadline,omitempty"` // active: when the time runs out (unix ms)
}

// ConsultEvent is the `consult` event both members receive, and the body
// of the `consult` topic on the subscriber stream.
type ConsultEvent struct {
	SessionID SessionID `json:"session_id"`
	// Type is "state" (a change: Op says which), "remaining" (the
	// periodic count) or "warning" (a threshold reached).
	Type             string         `json:"type"`
	Op               string         `json:"op,omitempty"`
	By               string         `json:"by,omitempty"` // state: the uid, "host" or "server"
	State            ConsultState   `json:"state"`
	RemainingSeconds int64          `json:"remaining_seconds"`
	Deadline         int64          `json:"deadline,omitempty"`
	Warning          int64          `json:"warning_seconds,omitempty"`
	Seconds          int64          `json:"seconds,omitempty"` // extend: seconds added
	Reason           EndReason      `json:"reason,omitempty"`
	Record           *ConsultRecord `json:"record,omitempty"` // final states: the billing record
}

func ceilSec(ms int64) int64 { return (ms + 999) / 1000 }

func (k *Consultation) view(now int64) *ConsultView {
	v := &ConsultView{Consultation: *k, RemainingSeconds: ceilSec(k.RemainingAt(now)),
		UsedSeconds: ceilSec(k.UsedAt(now)), Deadline: k.Deadline()}
	v.Extensions = append([]Extension(nil), k.Extensions...)
	return v
}

func liveKey(app, uid string) string { return app + "\x00" + uid }

// CreateConsultation creates a consultation and its session for the host.
func (c *Core) CreateConsultation(ctx context.Context, app string, in ConsultInput) (*ConsultView, error) {
	switch {
	case in.Consultant == "":
		return nil, Errf(CodeBadRequest, "missing consultant")
	case in.Customer == "":
		return nil, Errf(CodeBadRequest, "missing customer")
	case in.Consultant == in.Customer:
		return nil, Errf(CodeBadRequest, "the consultant and the customer must be two users")
	case in.Seconds <= 0:
		return nil, Errf(CodeBadRequest, "seconds must be a positive number of seconds bought")
	case in.Seconds > MaxConsultSeconds:
		return nil, Errf(CodeBadRequest, "seconds may not exceed "+strconv.Itoa(MaxConsultSeconds)+" (30 days)")
	case in.FreeSeconds != nil && (*in.FreeSeconds < 0 || *in.FreeSeconds > MaxConsultSeconds):
		return nil, Errf(CodeBadRequest, "free_seconds must be 0 to "+strconv.Itoa(MaxConsultSeconds))
	case in.PricePerMinute < 0 || in.PricePerMinute > MaxPricePerMinute:
		return nil, Errf(CodeBadRequest, "price_per_minute must be 0 to "+strconv.Itoa(MaxPricePerMinute)+" (in the currency's smallest unit)")
	case len(in.Currency) > 8:
		return nil, Errf(CodeBadRequest, "currency longer than 8 bytes")
	case in.ExpiresIn < 0 || in.ExpiresIn > MaxConsultSeconds:
		return nil, Errf(CodeBadRequest, "expires_in must be 0 (the default) to "+strconv.Itoa(MaxConsultSeconds)+" seconds")
	case len(in.Ref) > 128:
		return nil, Errf(CodeBadRequest, "ref longer than 128 bytes")
	}
	if in.Start == 0 {
		in.Start = StartAccept
	}
	for _, uid := range []string{in.Consultant, in.Customer} {
		if _, err := c.User(ctx, app, uid); err != nil {
			return nil, err
		}
	}
	free := int64(0)
	if in.FreeSeconds != nil {
		free = *in.FreeSeconds
	} else {
		left, err := c.freeLeft(ctx, app, in.Consultant, in.Customer)
		if err != nil {
			return nil, err
		}
		free = left
	}
	free = min(free, MaxConsultSeconds-in.Seconds)

	sid, err := c.newSessionID(ctx)
	if err != nil {
		return nil, err
	}
	st := &c.consult
	st.gate.RLock()
	defer st.gate.RUnlock()
	lk := liveKey(app, in.Consultant)
	st.mu.Lock()
	if st.live[lk] >= st.cfg.MaxPerConsultant {
		st.mu.Unlock()
		return nil, Errf(CodeConflict, "consultant "+in.Consultant+" already has "+strconv.Itoa(st.cfg.MaxPerConsultant)+
			" open consultations (the limit): end one first")
	}
	st.live[lk]++
	st.mu.Unlock()

	now := c.nowMS()
	ttl := st.cfg.PendingTTL.Milliseconds()
	if in.ExpiresIn > 0 {
		ttl = in.ExpiresIn * 1000
	}
	rec := Session{ID: sid, App: app, Kind: KindConsult, Owner: in.Consultant, CreatedAt: now}
	ms := []Member{
		{Session: rec.ID, UID: in.Consultant, Role: RoleOwner, JoinedAt: now},
		{Session: rec.ID, UID: in.Customer, Role: RoleMember, JoinedAt: now},
	}
	k := Consultation{ID: rec.ID, App: app, Consultant: in.Consultant, Customer: in.Customer, State: ConsultPending,
		Start: in.Start, BoughtSec: in.Seconds, FreeSec: free, PricePerMinute: in.PricePerMinute,
		Currency: in.Currency, Rounding: st.cfg.Rounding, Ref: in.Ref, CreatedAt: now, ExpiresAt: now + ttl}
	if in.Start == StartNow {
		k.start(now)
	}
	b := &Batch{Sessions: []Session{rec}, Members: ms}
	if err := consultRecords(b, &k); err != nil {
		c.releaseLive(app, in.Consultant)
		return nil, err
	}
	if k.State == ConsultActive {
		c.emitWebhook(b, app, consultStartedEvent(&k, "created", "host"))
	}
	if err := c.write(ctx, c.fenced(b)); err != nil {
		c.releaseLive(app, in.Consultant)
		return nil, err
	}
	s := c.cacheSession(&rec, ms)
	e := &consultEntry{s: s, k: k, lastRem: k.RemainingAt(now)}
	e.mu.Lock()
	st.mu.Lock()
	st.m[k.ID] = e
	st.mu.Unlock()
	c.consultSchedule(e, now)
	c.consultStateEvent(e, "created", "host", 0)
	e.mu.Unlock()
	c.publish(Event{Topic: TopicSession, App: app, UID: in.Consultant, Session: rec.ID, Type: "consult", Members: s.members().uids()})
	return k.view(now), nil
}

// consultFinal forgets a consultation that just became final: its slot
// under the consultant's limit, and its place in memory (it is read from
// the store from now on, so memory holds open consultations only).
func (c *Core) consultFinal(k *Consultation) {
	c.releaseLive(k.App, k.Consultant)
	st := &c.consult
	st.mu.Lock()
	delete(st.m, k.ID)
	st.mu.Unlock()
}

func (c *Core) releaseLive(app, consultant string) {
	st := &c.consult
	lk := liveKey(app, consultant)
	st.mu.Lock()
	if st.live[lk] <= 1 {
		delete(st.live, lk)
	} else {
		st.live[lk]--
	}
	st.mu.Unlock()
}

// consultEntryFor returns the consultation of session id in app, loading
// it (a final one) from the store when it is not in memory.
func (c *Core) consultEntryFor(ctx context.Context, app string, id SessionID) (*consultEntry, error) {
	st := &c.consult
	st.mu.Lock()
	e := st.m[id]
	st.mu.Unlock()
	if e != nil {
		if e.s.app != app {
			return nil, errNoConsult(id)
		}
		return e, nil
	}
	k, err := c.loadConsult(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, errNoConsult(id)
	}
	if err != nil {
		return nil, err
	}
	if k.App != app {
		return nil, errNoConsult(id)
	}
	s, err := c.session(ctx, app, id)
	if err != nil {
		return nil, err
	}
	e = &consultEntry{s: s, k: k}
	if k.State.Final() || !c.owns() {
		// Read from the store each time: final ones are not kept in
		// memory, and a cluster node that is not the domains' owner
		// keeps none (owner.go).
		return e, nil
	}
	st.mu.Lock()
	if prev := st.m[id]; prev != nil {
		e = prev
	} else {
		st.m[id] = e
	}
	st.mu.Unlock()
	return e, nil
}

func errNoConsult(id SessionID) *Error {
	return Errf(CodeNotFound, "no consultation "+itoa(uint64(id)))
}

// Consultation returns a consultation for the host.
func (c *Core) Consultation(ctx context.Context, app string, id SessionID) (*ConsultView, error) {
	e, err := c.consultEntryFor(ctx, app, id)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.k.view(c.nowMS()), nil
}

// ConsultAct applies a change asked by the host (uid "") or by a member
// (uid: the consultant or the customer; anyone else is refused
// forbidden).
func (c *Core) ConsultAct(ctx context.Context, app string, id SessionID, uid string, ch ConsultChange) (*ConsultView, error) {
	e, err := c.consultLockForChange(ctx, app, id)
	if err != nil {
		return nil, err
	}
	defer c.consultUnlock(e)
	by := "host"
	if uid == "" {
		ch.Actor = ActorHost
	} else {
		by = uid
		if ch.Actor = e.k.ActorOf(uid); ch.Actor == 0 {
			return nil, Errf(CodeForbidden, "not the consultant or the customer of consultation "+itoa(uint64(id)))
		}
	}
	now := c.nowMS()
	next := e.k
	next.Extensions = append([]Extension(nil), e.k.Extensions...)
	aerr := next.Apply(ch, now)
	if next.State == e.k.State && aerr != nil {
		return nil, aerr
	}
	// Either the change applied, or the time had run out and Apply ended
	// the consultation instead (the timer had not fired yet): store that.
	op := ch.Op.String()
	if aerr != nil {
		op, by = ConsultTimeUp.String(), "server"
	}
	b := &Batch{}
	if err := consultRecords(b, &next); err != nil {
		return nil, err
	}
	c.consultWebhooks(b, &e.k, &next, op, by)
	if err := c.write(ctx, c.fenced(b)); err != nil {
		return nil, err
	}
	c.consultCommitted(e, next, now, op, by, ch.Seconds)
	if aerr != nil {
		return nil, aerr
	}
	return e.k.view(now), nil
}

// consultLockForChange returns the consultation of session id in app,
// locked for a change: the gate held for reading and the entry's mutex.
// consultUnlock releases both.
func (c *Core) consultLockForChange(ctx context.Context, app string, id SessionID) (*consultEntry, error) {
	st := &c.consult
	for {
		e, err := c.consultEntryFor(ctx, app, id)
		if err != nil {
			return nil, err
		}
		st.gate.RLock()
		e.mu.Lock()
		if !e.gone {
			return e, nil
		}
		e.mu.Unlock()
		st.gate.RUnlock()
	}
}

func (c *Core) consultUnlock(e *consultEntry) {
	e.mu.Unlock()
	c.consult.gate.RUnlock()
}

// consultCommitted installs next (durable now) as e's state and tells the
// members. Called with e.mu held.
func (c *Core) consultCommitted(e *consultEntry, next Consultation, now int64, op, by string, seconds int64) {
	wasFinal := e.k.State.Final()
	e.k = next
	e.lastRem = next.RemainingAt(now)
	if next.State.Final() && !wasFinal {
		c.consultFinal(&next)
	}
	c.consultSchedule(e, now)
	c.consultStateEvent(e, op, by, seconds)
}

// consultWebhooks adds to b, the commit of a change from prev to next, the
// webhook events the change makes: consult.started when the clock starts,
// consult.ended (with the billing record) when it becomes final.
func (c *Core) consultWebhooks(b *Batch, prev, next *Consultation, op, by string) {
	switch {
	case prev.State == ConsultPending && next.State == ConsultActive:
		c.emitWebhook(b, next.App, consultStartedEvent(next, op, by))
	case !prev.State.Final() && next.State.Final():
		r := next.Bill()
		c.emitWebhook(b, next.App, WebhookEvent{Type: WebhookConsultEnded,
			Data: consultEndedData{SessionID: next.ID, Op: op, By: by, Record: &r}})
	}
}

func consultStartedEvent(k *Consultation, op, by string) WebhookEvent {
	return WebhookEvent{Type: WebhookConsultStarted, Data: consultStartedData{SessionID: k.ID, Consultant: k.Consultant,
		Customer: k.Customer, Ref: k.Ref, Op: op, By: by, StartedAt: k.StartedAt, BoughtSeconds: k.BoughtSec,
		FreeSeconds: k.FreeSec, Deadline: k.Deadline()}}
}

func (c *Core) consultSchedule(e *consultEntry, now int64) {
	c.consult.timers.set(e.k.ID, nextWake(&e.k, now, c.consult.every, c.consult.warn))
}

// consultStateEvent tells both members (and the stream) about a change.
// Called with e.mu held.
func (c *Core) consultStateEvent(e *consultEntry, op, by string, seconds int64) {
	now := c.nowMS()
	ev := &ConsultEvent{SessionID: e.k.ID, Type: "state", Op: op, By: by, State: e.k.State,
		RemainingSeconds: ceilSec(e.k.RemainingAt(now)), Deadline: e.k.Deadline(), Seconds: seconds, Reason: e.k.EndReason}
	if e.k.State.Final() {
		r := e.k.Bill()
		ev.Record = &r
	}
	c.consultEmit(e, ev)
}

func (c *Core) consultEmit(e *consultEntry, ev *ConsultEvent) {
	r := e.s.members()
	var frame []byte // encoded once, and only when someone is online
	for _, u := range r.users {
		for _, cl := range u.online() {
			if frame == nil {
				frame = appendEvent(nil, "consult", ev)
			}
			cl.reply(frame)
		}
	}
	if c.bus.active() {
		t := ev.Type
		if ev.Op != "" {
			t = ev.Op
		}
		c.publish(Event{Topic: TopicConsult, App: e.k.App, UID: ev.By, Session: e.k.ID, Type: t,
			Members: r.uids(), Detail: ev.State.String(), Consult: ev})
	}
}

// ConsultTick runs the clock once at the core clock's now: it expires,
// ends, warns and counts down every consultation that is due. The clock's
// goroutine calls it when the earliest entry falls due; tests with a
// replaced clock call it after moving the clock. It returns once the ends
// it made are durable and announced.
func (c *Core) ConsultTick(ctx context.Context) {
	var ids []SessionID
	now := c.nowMS()
	ids = c.consult.timers.due(now, ids)
	c.consultFire(ctx, now, ids)
}

type consultEnding struct {
	e    *consultEntry
	o    *op
	op   string
	prev Consultation // the state before, put back if the commit fails
}

// consultFire handles the due ids at now. Ends are made in memory at once
// (sends are refused from now on), submitted to the journal together (one
// group commit for many), and announced when durable.
func (c *Core) consultFire(ctx context.Context, now int64, ids []SessionID) {
	if len(ids) == 0 {
		return
	}
	st := &c.consult
	st.gate.RLock()
	defer st.gate.RUnlock()
	var ends []consultEnding
	for _, id := range ids {
		st.mu.Lock()
		e := st.m[id]
		st.mu.Unlock()
		if e == nil {
			continue
		}
		e.mu.Lock()
		if e.gone { // cannot happen under the gate: a load swaps st.m first
			e.mu.Unlock()
			continue
		}
		k := &e.k
		var ch ConsultOp
		switch {
		case k.State == ConsultPending && k.ExpiresAt > 0 && now >= k.ExpiresAt:
			ch = ConsultExpire
		case k.State == ConsultActive && k.RemainingAt(now) <= 0:
			ch = ConsultTimeUp
		case k.State == ConsultActive:
			rem := k.RemainingAt(now)
			if w := crossedWarning(e.lastRem, rem, st.warn); w > 0 {
				c.consultEmit(e, &ConsultEvent{SessionID: k.ID, Type: "warning", State: k.State,
					RemainingSeconds: ceilSec(rem), Deadline: k.Deadline(), Warning: w / 1000})
			}
			if crossedTick(e.lastRem, rem, st.every) {
				c.consultEmit(e, &ConsultEvent{SessionID: k.ID, Type: "remaining", State: k.State,
					RemainingSeconds: ceilSec(rem), Deadline: k.Deadline()})
			}
			e.lastRem = rem
		}
		if ch == 0 {
			c.consultSchedule(e, now)
			e.mu.Unlock()
			continue
		}
		next := *k
		next.Extensions = append([]Extension(nil), k.Extensions...)
		if err := next.Apply(ConsultChange{Op: ch, Actor: ActorServer}, now); err != nil {
			c.consultSchedule(e, now) // cannot happen: the checks above are Apply's
			e.mu.Unlock()
			continue
		}
		b := &Batch{}
		if err := consultRecords(b, &next); err != nil {
			c.cfg.LogError("consultation "+itoa(uint64(id))+" encode", err)
			e.mu.Unlock()
			continue
		}
		c.consultWebhooks(b, k, &next, ch.String(), "server")
		o := &op{batch: c.fenced(b), res: make(chan opResult, 1)}
		if err := c.submit(ctx, o); err != nil {
			// Stopping: the consultation stays as last saved; the
			// restart rule resumes it.
			e.mu.Unlock()
			continue
		}
		prev := *k
		e.k = next
		e.lastRem = 0
		st.timers.set(id, 0)
		c.consultFinal(&next)
		e.mu.Unlock()
		ends = append(ends, consultEnding{e: e, o: o, op: ch.String(), prev: prev})
	}
	for _, x := range ends {
		r := <-x.o.res
		if r.err != nil {
			// Not stored: put it back as the store has it, and try
			// again in a second (an end is charged to its deadline
			// whenever it is stored).
			c.cfg.LogError("consultation "+itoa(uint64(x.prev.ID))+" "+x.op, r.err)
			x.e.mu.Lock()
			x.e.k = x.prev
			st.mu.Lock()
			st.m[x.prev.ID] = x.e
			st.live[liveKey(x.prev.App, x.prev.Consultant)]++
			st.mu.Unlock()
			st.timers.set(x.prev.ID, now+1000)
			x.e.mu.Unlock()
			continue
		}
		x.e.mu.Lock()
		c.consultStateEvent(x.e, x.op, "server", 0)
		x.e.mu.Unlock()
	}
}

// runConsultClock is the clock's one goroutine; it returns when ctx ends.
func (c *Core) runConsultClock(ctx context.Context) {
	c.consult.timers.run(ctx, c.nowMS, func(now int64, ids []SessionID) { c.consultFire(ctx, now, ids) })
}

// consultOnSend applies the send rules of a consult session to a send by
// uid: refused before the start unless the start rule allows it, refused
// after the end; the consultant's first message under first_reply starts
// the clock, committed with the message (o.attach).
func (c *Core) consultOnSend(ctx context.Context, app string, s *sess, uid string, o *op, cacheOnly bool) error {
	st := &c.consult
	var e *consultEntry
	for {
		st.mu.Lock()
		e = st.m[s.id]
		st.mu.Unlock()
		if e == nil {
			if cacheOnly {
				return errCacheMiss
			}
			var err error
			if e, err = c.consultEntryFor(ctx, app, s.id); err != nil {
				return err
			}
		}
		e.mu.Lock()
		if !e.gone {
			break
		}
		e.mu.Unlock() // replaced by a takeover's load: look again
	}
	defer e.mu.Unlock()
	now := c.nowMS()
	if err := e.k.MaySend(uid, now); err != nil {
		return err
	}
	if e.k.State != ConsultPending || uid != e.k.Consultant || e.k.Start != StartFirstReply {
		return nil
	}
	next := e.k
	next.Extensions = append([]Extension(nil), e.k.Extensions...)
	if err := next.Apply(ConsultChange{Op: ConsultFirstReply, Actor: ActorConsultant}, now); err != nil {
		return err
	}
	var b Batch
	if err := consultRecords(&b, &next); err != nil {
		return err
	}
	recs := b.Records
	// The event goes in the message's commit too; its outbox id is given
	// on the journal, in commit order, so it is added there.
	ev := consultStartedEvent(&next, ConsultFirstReply.String(), uid)
	o.attach = func(_ *Message, b *Batch) {
		b.Records = append(b.Records, recs...)
		c.emitWebhook(b, app, ev)
	}
	// The clock starts with the message: installed now, so that the
	// consultant's next message does not start it again. Should the
	// message's commit fail, the store still says pending and a restart
	// resumes from there.
	c.consultCommitted(e, next, now, ConsultFirstReply.String(), uid, 0)
	return nil
}

// consultSummary is what a session list shows of a consultation.
type ConsultSummary struct {
	State            ConsultState `json:"state"`
	Consultant       string       `json:"consultant"`
	Customer         string       `json:"customer"`
	RemainingSeconds int64        `json:"remaining_seconds"`
	Deadline         int64        `json:"deadline,omitempty"`
	EndReason        EndReason    `json:"end_reason,omitempty"`
}

func (c *Core) consultSummary(ctx context.Context, app string, id SessionID) *ConsultSummary {
	e, err := c.consultEntryFor(ctx, app, id)
	if err != nil {
		return nil
	}
	now := c.nowMS()
	e.mu.Lock()
	defer e.mu.Unlock()
	return &ConsultSummary{State: e.k.State, Consultant: e.k.Consultant, Customer: e.k.Customer,
		RemainingSeconds: ceilSec(e.k.RemainingAt(now)), Deadline: e.k.Deadline(), EndReason: e.k.EndReason}
}

// consultAction runs a member's consult_* action over WebSocket or
// /v1/client: consult_accept, consult_decline, consult_pause,
// consult_resume, consult_end, and consult_get (the state).
func (c *Core) consultAction(ctx context.Context, id Identity, r *request) (any, error) {
	if r.SessionID == 0 {
		return nil, Errf(CodeBadRequest, "missing session_id: which consultation")
	}
	verb := r.Action[len("consult_"):]
	if verb == "get" {
		e, err := c.consultEntryFor(ctx, id.App, r.SessionID)
		if err != nil {
			return nil, err
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.k.ActorOf(id.UID) == 0 {
			return nil, Errf(CodeForbidden, "not the consultant or the customer of consultation "+itoa(uint64(r.SessionID)))
		}
		return e.k.view(c.nowMS()), nil
	}
	op, ok := ParseConsultOp(verb)
	if !ok || op == ConsultExtend || op == ConsultCancel {
		return nil, Errf(CodeBadRequest, "unknown action \""+clip(r.Action, 40)+"\"; consultation actions are "+
			"consult_get, consult_accept, consult_decline, consult_pause, consult_resume, consult_end")
	}
	return c.ConsultAct(ctx, id.App, r.SessionID, id.UID, ConsultChange{Op: op})
}

// consultCheckpoint saves every running consultation's clock at now in one
// commit: the graceful stop's half of the restart rule (Drain calls it
// before it stops taking writes), so that a consultation resumes after a
// restart — or on the next owner of a cluster, which takes the lease this
// node releases after it — with the time it had left at the stop. One
// whose time ran out and that the clock has not ended yet is ended first,
// at its deadline, as the clock would.
func (c *Core) consultCheckpoint(ctx context.Context) error {
	st := &c.consult
	now := c.nowMS()
	c.consultFire(ctx, now, st.timers.due(now, nil))
	st.gate.RLock()
	defer st.gate.RUnlock()
	st.mu.Lock()
	es := make([]*consultEntry, 0, len(st.m))
	for _, e := range st.m {
		es = append(es, e)
	}
	st.mu.Unlock()
	b := &Batch{}
	for _, e := range es {
		e.mu.Lock()
		if e.k.State == ConsultActive || e.k.State == ConsultPaused {
			if e.k.State == ConsultActive && e.k.RemainingAt(now) <= 0 {
				// Ending on the clock's goroutine right now (it popped
				// it before the due above): the clock stores the end.
				e.mu.Unlock()
				continue
			}
			e.k.checkpoint(now)
			if err := consultRecords(b, &e.k); err != nil {
				e.mu.Unlock()
				return err
			}
		}
		e.mu.Unlock()
	}
	if b.Empty() {
		return nil
	}
	return c.write(ctx, c.fenced(b))
}
