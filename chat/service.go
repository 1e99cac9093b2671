package chat

import (
	"context"
	"encoding/json"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Customer service: shops, their agents, and service conversations between
// a customer and the shop (docs/customer-service.md).
//
// A service conversation is a session of KindService whose members are the
// customer and, while the conversation is open, its assigned agent. Its
// messages take the private-message path unchanged: routing runs only when
// a conversation opens, is reopened or changes hands.
//
// Who owns what: every shop, agent and conversation below is guarded by
// svcState.mu, an outer lock held across one change's store reads, its
// journal commit, the roster swap (taking sess.mu inside) and its events,
// so that changes of one conversation, and the capacity counts they rely
// on, never interleave. The per-message path reads only svcState.live
// (a sync.Map of immutable svcLive values plus an atomic flag).

// KindService is a customer-service conversation (see model.go's kinds).
const KindService Kind = 4

// Service conversation statuses.
const (
	ServiceQueued   = "queued"
	ServiceOpen     = "open"
	ServiceResolved = "resolved"
)

// Agent statuses, as the agent sets them.
const (
	AgentOnline  = "online"
	AgentAway    = "away"
	AgentOffline = "offline"
)

// Agent-gone policies (ShopSettings.AgentGone).
const (
	AgentGoneKeep    = "keep"
	AgentGoneRequeue = "requeue"
)

// DefaultServiceGrace is how long an online agent with no connected device
// still counts as online: a reload or a brief network loss changes nothing.
const DefaultServiceGrace = 60 * time.Second

// ShopSettings is how a shop routes and answers.
type ShopSettings struct {
	// Strategy is balanced (default), round_robin or manual.
	Strategy string `json:"strategy"`
	// PreferLastAgent routes a returning customer to the agent who last
	// served them when that agent is available.
	PreferLastAgent bool `json:"prefer_last_agent"`
	// AgentGone is what happens to an agent's open conversations when the
	// agent's effective status becomes offline: keep (default) or requeue
	// (at the head of the queue).
	AgentGone string `json:"agent_gone"`
	// GraceSeconds: an online agent without a connected device counts as
	// offline only after this long. Zero means 60.
	GraceSeconds int `json:"grace_seconds,omitempty"`
	// AutoResolveMinutes resolves an open conversation nobody wrote in
	// for this long (by "system"). Zero means never.
	AutoResolveMinutes int `json:"auto_resolve_minutes,omitempty"`
	// Welcome is sent, marked automatic, from the agent when a
	// conversation is assigned (an agent's own Welcome overrides it).
	Welcome string `json:"welcome,omitempty"`
	// Offline is sent, marked automatic, from the shop when a customer
	// opens or reopens a conversation and no agent is available (the last
	// agent's own Offline overrides it).
	Offline string `json:"offline,omitempty"`
	// Hours, when set, are the shop's business hours; outside them the
	// queue is not routed (agents may still claim), OutOfOffice is sent
	// and OutsideHours decides whether customers are queued or refused.
	Hours *BusinessHours `json:"hours,omitempty"`
	// OutOfOffice is sent, marked automatic, from the shop to a customer
	// who opens or reopens a conversation outside the business hours.
	OutOfOffice string `json:"out_of_office,omitempty"`
	// OutsideHours is queue (default) or refuse (service_open answers
	// unavailable).
	OutsideHours string `json:"outside_hours,omitempty"`
}

// Shop is a shop of an app, created by the host.
type Shop struct {
	App       string       `json:"app"`
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	Avatar    string       `json:"avatar,omitempty"`
	Settings  ShopSettings `json:"settings"`
	CreatedAt int64        `json:"created_at"`
	UpdatedAt int64        `json:"updated_at"`
}

// Agent is one user serving one shop.
type Agent struct {
	App       string `json:"app"`
	Shop      string `json:"shop"`
	UID       string `json:"uid"`
	Capacity  int    `json:"capacity"`
	Status    string `json:"status"` // as the agent set it
	AddedAt   int64  `json:"added_at"`
	Order     int64  `json:"order"`             // the shop's agent order (round robin)
	Welcome   string `json:"welcome,omitempty"` // overrides the shop's welcome
	Offline   string `json:"offline,omitempty"` // overrides the shop's offline reply when this agent served the customer last
	UpdatedAt int64  `json:"updated_at"`
}

// ServiceConversation is a service conversation's record.
type ServiceConversation struct {
	Session    SessionID `json:"session_id"`
	App        string    `json:"app"`
	Shop       string    `json:"shop"`
	Customer   string    `json:"customer"`
	Status     string    `json:"status"`
	Agent      string    `json:"agent,omitempty"`      // while open
	LastAgent  string    `json:"last_agent,omitempty"` // who served the customer last
	QueueKey   int64     `json:"queue_key,omitempty"`  // order in the shop's queue while queued
	QueuedAt   int64     `json:"queued_at,omitempty"`
	AssignedAt int64     `json:"assigned_at,omitempty"`
	ResolvedAt int64     `json:"resolved_at,omitempty"`
	RatedAt    int64     `json:"rated_at,omitempty"` // the ResolvedAt of the resolution last rated
	CreatedAt  int64     `json:"created_at"`
}

// ServiceEvent is the `service` event's body, sent to the customer and to
// the shop's agents. Note is sent to agents only, never to the customer.
type ServiceEvent struct {
	Type     string    `json:"type"` // queued, position, assigned, transferred, resolved, reopened, agent_status
	Shop     string    `json:"shop"`
	Session  SessionID `json:"session_id,omitempty"`
	Customer string    `json:"customer,omitempty"`
	Agent    string    `json:"agent,omitempty"`
	From     string    `json:"from,omitempty"` // transferred: the previous agent
	Position int       `json:"position,omitempty"`
	Status   string    `json:"status,omitempty"`     // conversation status; agent_status: the effective status
	Set      string    `json:"set,omitempty"`        // agent_status: the status the agent set
	Note     string    `json:"note,omitempty"`       // transferred: agents only
	By       string    `json:"by,omitempty"`         // who did it: an agent's uid, "host" or "system"
	Time     int64     `json:"time"`                 // unix ms
	Waiting  int64     `json:"waiting_ms,omitempty"` // queued: how long it has waited
	Score    int       `json:"score,omitempty"`      // rated
}

// ServiceView is a conversation as the service actions return it.
type ServiceView struct {
	ServiceConversation
	Position int `json:"position,omitempty"` // 1-based place in the queue while queued
}

// AgentView is an agent with its live figures.
type AgentView struct {
	Agent
	Effective string `json:"effective"` // online or offline, following connections
	Open      int    `json:"open"`
	Connected bool   `json:"connected"`
}

// QueueEntry is one queued conversation as agents see it.
type QueueEntry struct {
	Session   SessionID `json:"session_id"`
	Customer  string    `json:"customer"`
	Position  int       `json:"position"`
	QueuedAt  int64     `json:"queued_at"`
	WaitingMS int64     `json:"waiting_ms"`
	LastAgent string    `json:"last_agent,omitempty"`
}

// ---- in-memory state

type svcState struct {
	mu        sync.Mutex          // outer lock: see the package comment above
	shops     map[string]*svcShop // app \x00 shop
	convs     map[SessionID]*svcConv
	customers map[string]*svcConv    // app \x00 shop \x00 customer → the customer's conversation
	agentsOf  map[string][]*svcAgent // app \x00 uid → the user's agent entries (presence)
	watch     map[*svcAgent]struct{} // online agents without a device: the tick checks their grace
	tail      int64                  // last queue key handed out at the tail
	head      int64                  // last queue key handed out at the head (≤ 0)
	order     int64                  // last agent order handed out
	autoAt    int64                  // when the auto-resolve check last ran (unix ms, the core's clock)
	cannedSeq int64                  // last canned reply id handed out
	noteSeq   int64                  // last note id handed out (unix ms × 1000, kept increasing)

	live   sync.Map // SessionID → *svcLive: what the message path needs, lock-free
	agents sync.Map // app \x00 uid → struct{}: users who are agents somewhere (login hook)
}

type svcShop struct {
	svcShopExtras
	rec    Shop
	hours  *hoursPlan  // compiled rec.Settings.Hours; nil: always open
	agents []*svcAgent // in Order
	queue  []*svcConv  // by QueueKey
	rr     int         // round-robin cursor
}

type svcAgent struct {
	rec       Agent
	shop      *svcShop
	open      int
	lastTaken int64
	connected bool
	goneAt    int64 // unix ms the last device left (or the process started)
	online    bool  // the effective status last published
}

type svcConv struct {
	rec   ServiceConversation
	told  int    // the queue position the customer was last told (0: none)
	avoid string // an agent who handed it back to the queue: not routed to them again at once
	oooAt int64  // when a refused customer was last sent the out-of-office reply
	live  *svcLive
}

// svcLive is what a message in a service conversation needs: immutable
// but for resolved.
type svcLive struct {
	app, shop, customer string
	resolved            atomic.Bool
	awaiting            atomic.Int64 // unix ms of the assignment awaiting its agent's first reply; 0: none
}

func (s *svcShop) graceMS() int64 {
	if s.rec.Settings.GraceSeconds > 0 {
		return int64(s.rec.Settings.GraceSeconds) * 1000
	}
	return DefaultServiceGrace.Milliseconds()
}

// effective is the agent's status following its connections at now.
func (a *svcAgent) effective(now int64) bool {
	return a.rec.Status == AgentOnline && (a.connected || now-a.goneAt < a.shop.graceMS())
}

// inHours reports whether the shop is within its business hours at now.
func (s *svcShop) inHours(now int64) bool {
	return s.hours == nil || s.hours.open(time.UnixMilli(now))
}

func (s *svcShop) agent(uid string) *svcAgent {
	for _, a := range s.agents {
		if a.rec.UID == uid {
			return a
		}
	}
	return nil
}

func (s *svcShop) position(cv *svcConv) int {
	for i, q := range s.queue {
		if q == cv {
			return i + 1
		}
	}
	return 0
}

func (s *svcShop) removeQueued(cv *svcConv) {
	for i, q := range s.queue {
		if q == cv {
			s.queue = append(s.queue[:i], s.queue[i+1:]...)
			return
		}
	}
}

func (s *svcShop) insertQueued(cv *svcConv) {
	i := sort.Search(len(s.queue), func(i int) bool { return s.queue[i].rec.QueueKey > cv.rec.QueueKey })
	s.queue = append(s.queue, nil)
	copy(s.queue[i+1:], s.queue[i:])
	s.queue[i] = cv
}

func newSvcState() *svcState {
	return &svcState{
		shops:     make(map[string]*svcShop),
		convs:     make(map[SessionID]*svcConv),
		customers: make(map[string]*svcConv),
		agentsOf:  make(map[string][]*svcAgent),
		watch:     make(map[*svcAgent]struct{}),
	}
}

// svcLoad rebuilds the service state from the store's records. Agents
// start disconnected, their grace running from now: an agent who
// reconnects within it finds everything as it was.
func (c *Core) svcLoad(ctx context.Context) error {
	st := c.svc
	now := c.nowMS()
	shops, err := c.svcScan(ctx, svcKindShop)
	if err != nil {
		return err
	}
	for _, b := range shops {
		var r Shop
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		sh := &svcShop{rec: r}
		if r.Settings.Hours != nil {
			if sh.hours, err = compileHours(r.Settings.Hours); err != nil {
				return err
			}
		}
		st.shops[r.App+"\x00"+r.ID] = sh
	}
	agents, err := c.svcScan(ctx, svcKindAgent)
	if err != nil {
		return err
	}
	for _, b := range agents {
		var r Agent
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		sh := st.shops[r.App+"\x00"+r.Shop]
		if sh == nil {
			continue
		}
		a := &svcAgent{rec: r, shop: sh, goneAt: now}
		a.online = a.effective(now)
		sh.agents = append(sh.agents, a)
		st.order = max(st.order, r.Order)
		st.agentsOf[userKey(r.App, r.UID)] = append(st.agentsOf[userKey(r.App, r.UID)], a)
		st.agents.Store(userKey(r.App, r.UID), struct{}{})
		if r.Status == AgentOnline {
			st.watch[a] = struct{}{}
		}
	}
	for _, sh := range st.shops {
		sort.Slice(sh.agents, func(i, j int) bool { return sh.agents[i].rec.Order < sh.agents[j].rec.Order })
	}
	if err := c.svcLoadExtras(ctx); err != nil {
		return err
	}
	convs, err := c.svcScan(ctx, svcKindConv)
	if err != nil {
		return err
	}
	for _, b := range convs {
		var r ServiceConversation
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		sh := st.shops[r.App+"\x00"+r.Shop]
		if sh == nil {
			continue
		}
		cv := &svcConv{rec: r, live: &svcLive{app: r.App, shop: r.Shop, customer: r.Customer}}
		cv.live.resolved.Store(r.Status == ServiceResolved)
		st.convs[r.Session] = cv
		st.customers[r.App+"\x00"+r.Shop+"\x00"+r.Customer] = cv
		st.live.Store(r.Session, cv.live)
		switch r.Status {
		case ServiceQueued:
			sh.insertQueued(cv)
			st.tail = max(st.tail, r.QueueKey)
			st.head = min(st.head, r.QueueKey)
		case ServiceOpen:
			if a := sh.agent(r.Agent); a != nil {
				a.open++
				a.lastTaken = max(a.lastTaken, r.AssignedAt)
			}
		}
	}
	return nil
}

// ---- the service goroutine

// svcTickEvery is how often the service goroutine checks agents' grace
// periods and retries queues: well under the one second within which a
// queue's head is assigned once an agent is available.
const svcTickEvery = 200 * time.Millisecond

// runService is the one goroutine for every shop: it ends agents' grace
// periods (on the core's clock) and drains queues that could not be
// drained when their agent became available (a failed commit), and
// resolves inactive conversations. Returns when ctx ends or Drain begins.
func (c *Core) runService(ctx context.Context) {
	t := time.NewTicker(svcTickEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.drainReq: // stopping: no more changes
			return
		case <-t.C:
		}
		c.svcTick(ctx)
	}
}

func (c *Core) svcTick(ctx context.Context) {
	st := c.svc
	st.mu.Lock()
	defer st.mu.Unlock()
	now := c.nowMS()
	var shops []*svcShop
	for a := range st.watch {
		if a.connected || a.rec.Status != AgentOnline {
			delete(st.watch, a)
			continue
		}
		if !a.effective(now) {
			delete(st.watch, a)
			shops = append(shops, a.shop)
		}
	}
	for _, sh := range shops {
		c.svcReeval(ctx, sh)
	}
	for _, sh := range st.shops {
		if len(sh.queue) > 0 && sh.rec.Settings.Strategy != StrategyManual {
			c.svcDrain(ctx, sh)
		}
	}
	if now-st.autoAt >= svcAutoResolveEvery.Milliseconds() {
		st.autoAt = now
		c.svcAutoResolve(ctx, now)
	}
}

// svcAutoResolveEvery is how often open conversations are checked for
// inactivity (AutoResolveMinutes): the check reads each candidate's
// session record, so it runs rarely.
const svcAutoResolveEvery = 30 * time.Second

// svcAutoResolve resolves the open conversations of shops with
// AutoResolveMinutes whose newest message (or assignment) is older than
// that. Called with st.mu held.
func (c *Core) svcAutoResolve(ctx context.Context, now int64) {
	st := c.svc
	for _, cv := range st.convs {
		if cv.rec.Status != ServiceOpen {
			continue
		}
		sh := st.shops[cv.rec.App+"\x00"+cv.rec.Shop]
		if sh == nil || sh.rec.Settings.AutoResolveMinutes <= 0 {
			continue
		}
		limit := int64(sh.rec.Settings.AutoResolveMinutes) * 60_000
		if now-cv.rec.AssignedAt < limit {
			continue
		}
		rec, err := c.store.Session(ctx, cv.rec.Session)
		if err != nil {
			c.cfg.LogError("service: reading session "+itoa(uint64(cv.rec.Session))+" for auto-resolve", err)
			continue
		}
		if now-max(rec.LastAt, cv.rec.AssignedAt) < limit {
			continue
		}
		if err := c.svcResolve(ctx, sh, cv, "system"); err != nil {
			c.cfg.LogError("service: auto-resolving session "+itoa(uint64(cv.rec.Session)), err)
			continue
		}
		c.svcDrain(ctx, sh)
	}
}

// svcPresence follows a user's devices: called (in its own goroutine)
// when an agent's first device logs in or its last one leaves. It reads
// the current device count, so calls arriving out of order still end
// right.
func (c *Core) svcPresence(app, uid string) {
	ctx := context.Background()
	st := c.svc
	st.mu.Lock()
	defer st.mu.Unlock()
	connected := len(c.userRef(app, uid).online()) > 0
	now := c.nowMS()
	for _, a := range st.agentsOf[userKey(app, uid)] {
		if a.connected == connected {
			continue
		}
		a.connected = connected
		if !connected {
			a.goneAt = now
			st.watch[a] = struct{}{}
		}
		c.svcReeval(ctx, a.shop)
	}
}

// svcAgentHook is called by login and logout on a user's first and last
// device: a cheap check, and for agents the presence change.
func (c *Core) svcAgentHook(app, uid string) {
	if _, ok := c.svc.agents.Load(userKey(app, uid)); ok {
		go c.svcPresence(app, uid)
	}
}

// svcReeval publishes agents' effective-status changes in sh, applies the
// agent-gone policy and drains the queue. Called with st.mu held.
func (c *Core) svcReeval(ctx context.Context, sh *svcShop) {
	now := c.nowMS()
	for _, a := range sh.agents {
		e := a.effective(now)
		if e == a.online {
			continue
		}
		a.online = e
		c.svcToAgents(sh, &ServiceEvent{Type: "agent_status", Shop: sh.rec.ID, Agent: a.rec.UID,
			Status: effName(e), Set: a.rec.Status, By: "system", Time: now})
		if !e && sh.rec.Settings.AgentGone == AgentGoneRequeue {
			c.svcRequeueAgent(ctx, sh, a, "system")
		}
	}
	c.svcDrain(ctx, sh)
}

func effName(online bool) string {
	if online {
		return AgentOnline
	}
	return AgentOffline
}

// svcRequeueAgent puts a's open conversations back at the head of the
// queue, the earliest assigned first. Called with st.mu held.
func (c *Core) svcRequeueAgent(ctx context.Context, sh *svcShop, a *svcAgent, by string) {
	var mine []*svcConv
	for _, cv := range c.svc.convs {
		if cv.rec.Status == ServiceOpen && cv.rec.Agent == a.rec.UID && cv.rec.App == sh.rec.App && cv.rec.Shop == sh.rec.ID {
			mine = append(mine, cv)
		}
	}
	// Each goes to the head in turn: the latest assigned first, so the
	// earliest assigned ends up first.
	sort.Slice(mine, func(i, j int) bool { return mine[i].rec.AssignedAt > mine[j].rec.AssignedAt })
	for _, cv := range mine {
		if err := c.svcEnqueue(ctx, sh, cv, true, "requeued", by, ""); err != nil {
			c.cfg.LogError("service: requeueing session "+itoa(uint64(cv.rec.Session)), err)
		}
	}
}

// ---- changes (each with st.mu held)

// svcEnqueue moves cv into sh's queue: at the tail, or at the head (a
// conversation handed back). One commit: the record, when it had an
// agent, that agent's membership, and the service.queued webhook event
// (reason: reopened, transferred or requeued).
func (c *Core) svcEnqueue(ctx context.Context, sh *svcShop, cv *svcConv, head bool, reason, by, note string) error {
	st := c.svc
	now := c.nowMS()
	next := cv.rec
	prev := next.Agent
	next.Status, next.Agent, next.QueuedAt = ServiceQueued, "", now
	if head {
		next.QueueKey = st.head - 1
	} else {
		next.QueueKey = st.tail + 1
	}
	b := &Batch{}
	if prev != "" {
		b.DelMembers = []MemberKey{{Session: cv.rec.Session, UID: prev}}
	}
	c.emitWebhook(b, next.App, WebhookEvent{Type: WebhookServiceQueued, Data: serviceQueuedData{SessionID: next.Session,
		Shop: next.Shop, Customer: next.Customer, From: prev, Reason: reason, By: by, QueuedAt: now}})
	if err := c.svcCommit(ctx, b, []svcPut{{svcKindConv, svcConvKey(cv.rec.Session), &next}}); err != nil {
		return err
	}
	if head {
		st.head = next.QueueKey
	} else {
		st.tail = next.QueueKey
	}
	if cv.rec.Status == ServiceQueued {
		sh.removeQueued(cv)
	}
	if a := sh.agent(prev); a != nil && cv.rec.Status == ServiceOpen {
		a.open--
	}
	cv.rec = next
	cv.told = 0
	cv.live.resolved.Store(false)
	sh.insertQueued(cv)
	if prev != "" {
		c.svcRoster(ctx, cv)
		c.svcToAgents(sh, &ServiceEvent{Type: "transferred", Shop: sh.rec.ID, Session: next.Session,
			Customer: next.Customer, From: prev, Status: ServiceQueued, By: by, Note: note, Time: now})
	}
	return nil
}

// svcAssign gives cv to agent a. One commit: the record, a's membership,
// the previous agent's removal and the service.assigned webhook event.
func (c *Core) svcAssign(ctx context.Context, sh *svcShop, cv *svcConv, a *svcAgent, typ, by, note string) error {
	now := c.nowMS()
	next := cv.rec
	prev := next.Agent
	next.Status, next.Agent, next.LastAgent, next.QueueKey, next.AssignedAt = ServiceOpen, a.rec.UID, a.rec.UID, 0, now
	b := &Batch{Members: []Member{{Session: cv.rec.Session, UID: a.rec.UID, Role: RoleMember, JoinedAt: now}}}
	if prev != "" && prev != a.rec.UID {
		b.DelMembers = []MemberKey{{Session: cv.rec.Session, UID: prev}}
	}
	c.emitWebhook(b, next.App, WebhookEvent{Type: WebhookServiceAssigned, Data: svcAssignedData(&cv.rec, &next, typ, by)})
	if err := c.svcCommit(ctx, b, []svcPut{{svcKindConv, svcConvKey(cv.rec.Session), &next}}); err != nil {
		return err
	}
	if cv.rec.Status == ServiceQueued {
		sh.removeQueued(cv)
	}
	if p := sh.agent(prev); p != nil && cv.rec.Status == ServiceOpen {
		p.open--
	}
	cv.rec = next
	c.svcRoster(ctx, cv)
	c.svcAssigned(ctx, sh, cv, a, prev, typ, by, note, now)
	return nil
}

// svcAssignedData is service.assigned's data for cv changing from prev to
// next: typ is the service event's type (assigned, claimed, transferred).
func svcAssignedData(prev, next *ServiceConversation, typ, by string) serviceAssignedData {
	reason := typ
	if typ == "assigned" {
		reason = "routed"
	}
	d := serviceAssignedData{SessionID: next.Session, Shop: next.Shop, Customer: next.Customer, Agent: next.Agent,
		From: prev.Agent, Reason: reason, By: by, AssignedAt: next.AssignedAt}
	if prev.Status == ServiceQueued {
		d.QueuedAt = prev.QueuedAt
	}
	return d
}

// svcAssigned does what follows a durable assignment of cv to a: the
// counts, the events and the welcome reply.
func (c *Core) svcAssigned(ctx context.Context, sh *svcShop, cv *svcConv, a *svcAgent, prev, typ, by, note string, now int64) {
	a.open++
	a.lastTaken = now
	cv.avoid = ""
	cv.told = 0
	cv.live.resolved.Store(false)
	next := &cv.rec
	ev := ServiceEvent{Type: typ, Shop: sh.rec.ID, Session: next.Session, Customer: next.Customer,
		Agent: a.rec.UID, From: prev, Status: ServiceOpen, By: by, Time: now}
	c.svcToCustomer(next, &ev)
	ev.Note = note
	c.svcToAgents(sh, &ev)
	welcome := a.rec.Welcome
	if welcome == "" {
		welcome = sh.rec.Settings.Welcome
	}
	c.svcAutoReply(ctx, cv, a.rec.UID, "welcome", welcome)
	// After the welcome (fanned out before Send returned): the agent's
	// next message is their first response.
	cv.live.awaiting.Store(now)
}

// svcAutoReply sends an automatic message into cv: a text message whose
// content says "auto" (welcome, offline or out_of_office), from the agent
// (from) or, with from empty, from the shop. Best effort: the change it
// goes with is already durable.
func (c *Core) svcAutoReply(ctx context.Context, cv *svcConv, from, kind, text string) {
	if text == "" {
		return
	}
	content, _ := json.Marshal(struct {
		Text string `json:"text"`
		Auto string `json:"auto"`
	}{text, kind})
	if _, err := c.Send(ctx, cv.rec.App, SendInput{From: from, Session: cv.rec.Session, Type: "text", Content: content}); err != nil {
		c.cfg.LogError("service: "+kind+" reply in session "+itoa(uint64(cv.rec.Session)), err)
	}
}

// svcArrived routes a conversation that was just opened or reopened and
// answers automatically: out of office outside the business hours, the
// offline reply when it still waits.
func (c *Core) svcArrived(ctx context.Context, sh *svcShop, cv *svcConv) {
	now := c.nowMS()
	if !sh.inHours(now) {
		c.svcPositions(sh, now)
		c.svcAutoReply(ctx, cv, "", "out_of_office", sh.rec.Settings.OutOfOffice)
		return
	}
	c.svcDrain(ctx, sh)
	if cv.rec.Status == ServiceQueued {
		text := sh.rec.Settings.Offline
		if a := sh.agent(cv.rec.LastAgent); a != nil && a.rec.Offline != "" {
			text = a.rec.Offline
		}
		c.svcAutoReply(ctx, cv, "", "offline", text)
	}
}

// svcRefused reports the error for a customer arriving outside the
// business hours of a shop that refuses them then, or nil.
func (c *Core) svcRefused(sh *svcShop) error {
	if sh.rec.Settings.OutsideHours != "refuse" || sh.inHours(c.nowMS()) {
		return nil
	}
	msg := "shop \"" + sh.rec.ID + "\" is outside its business hours"
	if t := sh.rec.Settings.OutOfOffice; t != "" {
		msg += ": " + t
	}
	return Errf(CodeUnavailable, msg)
}

// svcResolve closes cv: its agent leaves the session; the customer
// writing again reopens it. One commit: the record, the agent's
// membership and the service.resolved webhook event.
func (c *Core) svcResolve(ctx context.Context, sh *svcShop, cv *svcConv, by string) error {
	now := c.nowMS()
	next := cv.rec
	prev := next.Agent
	next.Status, next.Agent, next.QueueKey, next.ResolvedAt = ServiceResolved, "", 0, now
	b := &Batch{}
	if prev != "" {
		b.DelMembers = []MemberKey{{Session: cv.rec.Session, UID: prev}}
	}
	rd := serviceResolvedData{SessionID: next.Session, Shop: next.Shop, Customer: next.Customer, Agent: prev, By: by, ResolvedAt: now}
	if cv.rec.Status == ServiceOpen {
		rd.AssignedAt = cv.rec.AssignedAt
	}
	c.emitWebhook(b, next.App, WebhookEvent{Type: WebhookServiceResolved, Data: rd})
	if err := c.svcCommit(ctx, b, []svcPut{{svcKindConv, svcConvKey(cv.rec.Session), &next}}); err != nil {
		return err
	}
	if cv.rec.Status == ServiceQueued {
		sh.removeQueued(cv)
	}
	if a := sh.agent(prev); a != nil && cv.rec.Status == ServiceOpen {
		a.open--
	}
	cv.rec = next
	cv.told = 0
	cv.live.resolved.Store(true)
	cv.live.awaiting.Store(0)
	c.svcRoster(ctx, cv)
	ev := ServiceEvent{Type: "resolved", Shop: sh.rec.ID, Session: next.Session, Customer: next.Customer,
		Agent: prev, Status: ServiceResolved, By: by, Time: now}
	c.svcToCustomer(&next, &ev)
	c.svcToAgents(sh, &ev)
	return nil
}

// svcDrain assigns the head of sh's queue while an agent is available,
// then tells every queued customer whose position changed.
func (c *Core) svcDrain(ctx context.Context, sh *svcShop) {
	now := c.nowMS()
	for len(sh.queue) > 0 && sh.inHours(now) {
		head := sh.queue[0]
		a, rr := svcRoute(sh, head.rec.LastAgent, head.avoid, now)
		if a == nil {
			break
		}
		if err := c.svcAssign(ctx, sh, head, a, "assigned", "system", ""); err != nil {
			c.cfg.LogError("service: assigning session "+itoa(uint64(head.rec.Session)), err)
			break
		}
		sh.rr = rr
	}
	c.svcPositions(sh, now)
}

// svcRoute picks the agent of sh for a conversation whose last agent is
// last, never avoid; nil when nobody is available. The returned cursor is
// the shop's round-robin cursor once the choice is made.
func svcRoute(sh *svcShop, last, avoid string, now int64) (*svcAgent, int) {
	cands := make([]routeCandidate, len(sh.agents))
	for i, a := range sh.agents {
		cands[i] = routeCandidate{uid: a.rec.UID, open: a.open, capacity: a.rec.Capacity,
			online: a.effective(now) && a.rec.UID != avoid, lastTaken: a.lastTaken}
	}
	i, rr := routeChoice(sh.rec.Settings.Strategy, cands, sh.rr, last, sh.rec.Settings.PreferLastAgent)
	if i < 0 {
		return nil, sh.rr
	}
	return sh.agents[i], rr
}

// svcPositions tells each queued customer whose place changed its new
// position, and the shop's agents about newly queued conversations.
func (c *Core) svcPositions(sh *svcShop, now int64) {
	for i, cv := range sh.queue {
		pos := i + 1
		if cv.told == pos {
			continue
		}
		typ := "position"
		if cv.told == 0 {
			typ = "queued"
			c.svcToAgents(sh, &ServiceEvent{Type: typ, Shop: sh.rec.ID, Session: cv.rec.Session, Customer: cv.rec.Customer,
				Position: pos, Status: ServiceQueued, Time: now, Waiting: now - cv.rec.QueuedAt})
		}
		cv.told = pos
		c.svcToCustomer(&cv.rec, &ServiceEvent{Type: typ, Shop: sh.rec.ID, Session: cv.rec.Session,
			Customer: cv.rec.Customer, Position: pos, Status: ServiceQueued, Time: now})
	}
}

// svcRoster swaps the cached session's roster to the record's members:
// the customer, and the agent while open.
func (c *Core) svcRoster(ctx context.Context, cv *svcConv) {
	s, err := c.session(ctx, cv.rec.App, cv.rec.Session)
	if err != nil {
		c.cfg.LogError("service: loading session "+itoa(uint64(cv.rec.Session)), err)
		return
	}
	ms := []Member{{Session: cv.rec.Session, UID: cv.rec.Customer, Role: RoleMember}}
	if cv.rec.Agent != "" {
		ms = append(ms, Member{Session: cv.rec.Session, UID: cv.rec.Agent, Role: RoleMember})
	}
	s.mu.Lock()
	s.roster.Store(c.newRoster(cv.rec.App, ms))
	s.mu.Unlock()
}

func (c *Core) svcToCustomer(rec *ServiceConversation, ev *ServiceEvent) {
	b := appendEvent(nil, "service", ev)
	for _, cl := range c.userRef(rec.App, rec.Customer).online() {
		cl.reply(b)
	}
	if ev.Type == "position" { // every other customer event also goes to the agents, published there
		c.svcPublish(rec.App, ev)
	}
}

// svcToAgents sends ev to every online device of every agent of sh.
func (c *Core) svcToAgents(sh *svcShop, ev *ServiceEvent) {
	b := appendEvent(nil, "service", ev)
	for _, a := range sh.agents {
		for _, cl := range c.userRef(sh.rec.App, a.rec.UID).online() {
			cl.reply(b)
		}
	}
	c.svcPublish(sh.rec.App, ev)
}

// svcPublish puts ev on the live stream's service topic.
func (c *Core) svcPublish(app string, ev *ServiceEvent) {
	if !c.bus.active() {
		return
	}
	e := *ev
	c.publish(Event{Topic: TopicService, App: app, UID: ev.Customer, Session: ev.Session, Type: ev.Type, Service: &e})
}

// ---- messages in service conversations (the hot path)

// svcMessageEvent encodes a message of a service conversation: the
// message event with the shop and the sender's role (customer, agent, or
// shop for a message without a sender).
// A customer writing to a resolved conversation reopens it.
func (c *Core) svcMessageEvent(m *Message) []byte {
	v, ok := c.svc.live.Load(m.Session)
	if !ok {
		return appendMessageEvent(make([]byte, 0, 224+len(m.From)+len(m.Type)+len(m.CID)+len(m.Content)), m)
	}
	l := v.(*svcLive)
	var role string
	switch m.From {
	case "":
		role = "shop" // an automatic reply or a notice from the host
	case l.customer:
		role = "customer"
		if l.resolved.Load() {
			go c.svcReopen(m.App, m.Session)
		}
	default:
		role = "agent"
		if at := l.awaiting.Swap(0); at != 0 {
			go c.svcFirstResponse(l.app, l.shop, m.CreatedAt-at)
		}
	}
	b := make([]byte, 0, 256+len(m.From)+len(m.Type)+len(m.CID)+len(m.Content)+len(l.shop))
	b = append(b, `{"event":"message","data":`...)
	b = appendMessage(b, m)
	b = b[:len(b)-1]
	b = append(b, `,"shop":`...)
	b = appendString(b, l.shop)
	b = append(b, `,"role":"`...)
	b = append(b, role...)
	return append(b, `"}}`...)
}

// svcReopen routes a resolved conversation again: the customer wrote.
func (c *Core) svcReopen(app string, sid SessionID) {
	ctx := context.Background()
	st := c.svc
	st.mu.Lock()
	defer st.mu.Unlock()
	cv := st.convs[sid]
	if cv == nil || cv.rec.App != app || cv.rec.Status != ServiceResolved {
		return
	}
	sh := st.shops[app+"\x00"+cv.rec.Shop]
	if sh == nil {
		return
	}
	c.svcReopenLocked(ctx, sh, cv, cv.rec.Customer)
}

func (c *Core) svcReopenLocked(ctx context.Context, sh *svcShop, cv *svcConv, by string) error {
	if err := c.svcRefused(sh); err != nil {
		// Wrote outside the hours: told so (once per ten minutes, not per
		// message), and it stays resolved.
		if now := c.nowMS(); by == cv.rec.Customer && now-cv.oooAt >= 10*60*1000 {
			cv.oooAt = now
			c.svcAutoReply(ctx, cv, "", "out_of_office", sh.rec.Settings.OutOfOffice)
		}
		return err
	}
	now := c.nowMS()
	ev := ServiceEvent{Type: "reopened", Shop: sh.rec.ID, Session: cv.rec.Session, Customer: cv.rec.Customer,
		Status: ServiceQueued, By: by, Time: now}
	// Nobody waiting and an agent free: assigned straight from resolved,
	// one commit.
	if len(sh.queue) == 0 && sh.inHours(now) {
		if a, rr := svcRoute(sh, cv.rec.LastAgent, "", now); a != nil {
			ev.Status = ServiceOpen
			c.svcToAgents(sh, &ev)
			if err := c.svcAssign(ctx, sh, cv, a, "assigned", "system", ""); err != nil {
				return err
			}
			sh.rr = rr
			return nil
		}
	}
	if err := c.svcEnqueue(ctx, sh, cv, false, "reopened", by, ""); err != nil {
		return err
	}
	c.svcToAgents(sh, &ev)
	c.svcArrived(ctx, sh, cv)
	return nil
}

// ---- errors

func errUnknownShop(shop string) *Error {
	return Errf(CodeNotFound, "unknown shop \""+clip(shop, 64)+"\"")
}

func errNotAgent(shop string) *Error {
	return Errf(CodeForbidden, "not an agent of shop \""+clip(shop, 64)+"\"")
}

func errNoConversation(id SessionID) *Error {
	return Errf(CodeNotFound, "no service conversation "+itoa(uint64(id)))
}
