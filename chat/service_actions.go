package chat

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"unicode/utf8"
)

// Customer-service actions: the client actions (WebSocket and POST
// /v1/client, through handle) and the host's (the server API's POST
// /api/v1/service, through ServiceHost). Both decode their own request
// struct from the raw JSON: the hot path's request struct stays as it is.

// ServiceActions lists the client actions of customer service.
var ServiceActions = []string{"service_open", "service_conversation", "service_status", "service_claim",
	"service_transfer", "service_resolve", "service_queue", "service_mine", "service_agents",
	"service_canned", "service_canned_put", "service_canned_delete", "service_note", "service_notes", "service_rate"}

// ServiceHostActions lists the host's actions (POST /api/v1/service).
var ServiceHostActions = []string{"shop_put", "shop", "shops", "agent_put", "agent_remove", "agents",
	"conversation", "conversations", "transfer", "resolve", "canned", "canned_put", "canned_delete",
	"notes", "ratings", "figures"}

func init() { Actions = append(Actions, ServiceActions...) }

func isServiceAction(a string) bool { return strings.HasPrefix(a, "service_") }

// serviceRequest is a customer-service request, client or host.
type serviceRequest struct {
	Action    string        `json:"action"`
	Shop      string        `json:"shop"`
	SessionID SessionID     `json:"session_id"`
	Status    string        `json:"status"`
	To        string        `json:"to"`
	Queue     bool          `json:"queue"`
	Note      string        `json:"note"`
	UID       string        `json:"uid"`
	Name      *string       `json:"name"`
	Avatar    *string       `json:"avatar"`
	Settings  *ShopSettings `json:"settings"`
	Capacity  int           `json:"capacity"`
	Agent     string        `json:"agent"`
	Since     int64         `json:"since"`
	Until     int64         `json:"until"`
	Limit     int           `json:"limit"`
	Welcome   *string       `json:"welcome"`
	Offline   *string       `json:"offline"`
	CannedID  int64         `json:"canned_id"`
	Shortcut  string        `json:"shortcut"`
	Text      string        `json:"text"`
	Q         string        `json:"q"`
	Score     int           `json:"score"`
	Comment   string        `json:"comment"`
}

func decodeServiceRequest(b []byte) (*serviceRequest, error) {
	var r serviceRequest
	if err := json.Unmarshal(b, &r); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, Errf(CodeBadRequest, "bad JSON: field \""+te.Field+"\" must be "+te.Type.String())
		}
		return nil, Errf(CodeBadRequest, "bad JSON: "+err.Error())
	}
	if len(r.Note) > 4096 {
		return nil, Errf(CodeTooLarge, "note is longer than 4096 bytes")
	}
	return &r, nil
}

// serviceAction runs one client action of customer service for cl.
func (c *Core) serviceAction(ctx context.Context, cl *Client, action string, b []byte) (any, error) {
	r, err := decodeServiceRequest(b)
	if err != nil {
		return nil, err
	}
	id := cl.id
	st := c.svc
	st.mu.Lock()
	defer st.mu.Unlock()
	switch action {
	case "service_open":
		return c.svcOpen(ctx, id, r.Shop)
	case "service_conversation":
		cv, _, err := c.svcConvFor(id, r.SessionID, true)
		if err != nil {
			return nil, err
		}
		return c.svcView(cv), nil
	case "service_status":
		return c.svcSetStatus(ctx, id, r.Shop, r.Status)
	case "service_claim":
		cv, sh, err := c.svcConvFor(id, r.SessionID, false)
		if err != nil {
			return nil, err
		}
		a := sh.agent(id.UID)
		switch {
		case cv.rec.Status == ServiceOpen:
			return nil, Errf(CodeConflict, "conversation "+itoa(uint64(cv.rec.Session))+" is already assigned to "+cv.rec.Agent)
		case cv.rec.Status == ServiceResolved:
			return nil, Errf(CodeConflict, "conversation "+itoa(uint64(cv.rec.Session))+" is resolved")
		case a.open >= a.rec.Capacity:
			return nil, Errf(CodeConflict, "at capacity: "+itoa(uint64(a.open))+" open conversations of "+itoa(uint64(a.rec.Capacity)))
		}
		if err := c.svcAssign(ctx, sh, cv, a, "claimed", id.UID, ""); err != nil {
			return nil, err
		}
		c.svcPositions(sh, c.nowMS())
		return c.svcView(cv), nil
	case "service_transfer":
		cv, sh, err := c.svcConvFor(id, r.SessionID, false)
		if err != nil {
			return nil, err
		}
		if cv.rec.Agent != id.UID {
			return nil, Errf(CodeForbidden, "only the assigned agent (or the host) transfers conversation "+itoa(uint64(cv.rec.Session)))
		}
		return c.svcTransfer(ctx, sh, cv, r, id.UID)
	case "service_resolve":
		cv, sh, err := c.svcConvFor(id, r.SessionID, false)
		if err != nil {
			return nil, err
		}
		if cv.rec.Status == ServiceResolved {
			return nil, Errf(CodeConflict, "conversation "+itoa(uint64(cv.rec.Session))+" is already resolved")
		}
		if err := c.svcResolve(ctx, sh, cv, id.UID); err != nil {
			return nil, err
		}
		c.svcDrain(ctx, sh)
		return c.svcView(cv), nil
	case "service_queue":
		sh, err := c.svcShopAsAgent(id, r.Shop)
		if err != nil {
			return nil, err
		}
		return c.svcQueue(sh), nil
	case "service_agents":
		sh, err := c.svcShopAsAgent(id, r.Shop)
		if err != nil {
			return nil, err
		}
		return c.svcAgents(sh), nil
	case "service_mine":
		as := st.agentsOf[userKey(id.App, id.UID)]
		if len(as) == 0 {
			return nil, Errf(CodeForbidden, "not an agent of any shop")
		}
		out := []ServiceView{}
		for _, cv := range st.convs {
			if cv.rec.App == id.App && cv.rec.Status == ServiceOpen && cv.rec.Agent == id.UID && (r.Shop == "" || r.Shop == cv.rec.Shop) {
				out = append(out, c.svcView(cv))
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].AssignedAt < out[j].AssignedAt })
		return out, nil
	}
	if v, ok, err := c.svcClientExtra(ctx, id, action, r); ok {
		return v, err
	}
	return nil, Errf(CodeBadRequest, "unknown action \""+clip(action, 40)+"\"; customer-service actions are "+strings.Join(ServiceActions, ", "))
}

// svcOpen opens (or returns, or reopens) the customer's conversation with
// a shop. Called with st.mu held.
func (c *Core) svcOpen(ctx context.Context, id Identity, shop string) (*ServiceView, error) {
	st := c.svc
	if shop == "" {
		return nil, Errf(CodeBadRequest, "missing shop: which shop to talk to")
	}
	sh := st.shops[id.App+"\x00"+shop]
	if sh == nil {
		return nil, errUnknownShop(shop)
	}
	if sh.agent(id.UID) != nil {
		return nil, Errf(CodeForbidden, "an agent of shop \""+shop+"\" cannot open a conversation with it as a customer")
	}
	if cv := st.customers[id.App+"\x00"+shop+"\x00"+id.UID]; cv != nil {
		if cv.rec.Status == ServiceResolved {
			if err := c.svcRefused(sh); err != nil {
				return nil, err
			}
			if err := c.svcReopenLocked(ctx, sh, cv, id.UID); err != nil {
				return nil, err
			}
		}
		v := c.svcView(cv)
		return &v, nil
	}
	if err := c.svcRefused(sh); err != nil {
		return nil, err
	}
	sid, err := c.newSessionID(ctx)
	if err != nil {
		return nil, err
	}
	now := c.nowMS()
	rec := Session{ID: sid, App: id.App, Kind: KindService, Name: sh.rec.Name,
		Avatar: sh.rec.Avatar, Owner: id.UID, CreatedAt: now}
	ms := []Member{{Session: rec.ID, UID: id.UID, Role: RoleMember, JoinedAt: now}}
	conv := ServiceConversation{Session: rec.ID, App: id.App, Shop: shop, Customer: id.UID, CreatedAt: now}
	// Nobody waiting and an agent free: created assigned, in one commit.
	// Else created queued, in one commit with the session: a crash before
	// the assignment leaves it in the queue, never lost.
	var agent *svcAgent
	rr := sh.rr
	if len(sh.queue) == 0 && sh.inHours(now) {
		agent, rr = svcRoute(sh, "", "", now)
	}
	if agent != nil {
		conv.Status, conv.Agent, conv.LastAgent, conv.AssignedAt = ServiceOpen, agent.rec.UID, agent.rec.UID, now
		ms = append(ms, Member{Session: rec.ID, UID: agent.rec.UID, Role: RoleMember, JoinedAt: now})
	} else {
		conv.Status, conv.QueueKey, conv.QueuedAt = ServiceQueued, st.tail+1, now
	}
	b := &Batch{Sessions: []Session{rec}, Members: ms}
	if agent != nil {
		c.emitWebhook(b, id.App, WebhookEvent{Type: WebhookServiceAssigned, Data: svcAssignedData(&ServiceConversation{}, &conv, "assigned", "system")})
	} else {
		c.emitWebhook(b, id.App, WebhookEvent{Type: WebhookServiceQueued, Data: serviceQueuedData{SessionID: rec.ID,
			Shop: shop, Customer: id.UID, Reason: "opened", By: id.UID, QueuedAt: now}})
	}
	if err := c.svcCommit(ctx, b, []svcPut{{svcKindConv, svcConvKey(rec.ID), &conv}}); err != nil {
		return nil, err
	}
	c.cacheSession(&rec, ms)
	cv := &svcConv{rec: conv, live: &svcLive{app: id.App, shop: shop, customer: id.UID}}
	st.convs[rec.ID] = cv
	st.customers[id.App+"\x00"+shop+"\x00"+id.UID] = cv
	st.live.Store(rec.ID, cv.live)
	if agent != nil {
		sh.rr = rr
		c.svcAssigned(ctx, sh, cv, agent, "", "assigned", "system", "", now)
	} else {
		st.tail = conv.QueueKey
		sh.insertQueued(cv)
		c.svcArrived(ctx, sh, cv)
	}
	v := c.svcView(cv)
	return &v, nil
}

// svcConvFor finds a conversation for a caller: a customer (when
// customerOK) may see their own; otherwise the caller must be an agent of
// the conversation's shop.
func (c *Core) svcConvFor(id Identity, sid SessionID, customerOK bool) (*svcConv, *svcShop, error) {
	st := c.svc
	if sid == 0 {
		return nil, nil, Errf(CodeBadRequest, "missing session_id")
	}
	cv := st.convs[sid]
	if cv == nil || cv.rec.App != id.App {
		return nil, nil, errNoConversation(sid)
	}
	sh := st.shops[id.App+"\x00"+cv.rec.Shop]
	if sh == nil {
		return nil, nil, errNoConversation(sid)
	}
	if customerOK && cv.rec.Customer == id.UID {
		return cv, sh, nil
	}
	if sh.agent(id.UID) == nil {
		if len(st.agentsOf[userKey(id.App, id.UID)]) > 0 {
			return nil, nil, Errf(CodeForbidden, "conversation "+itoa(uint64(sid))+" belongs to shop \""+cv.rec.Shop+"\", which you are not an agent of")
		}
		if cv.rec.Customer == id.UID {
			return nil, nil, Errf(CodeForbidden, "customers cannot do this; it is an agent's action")
		}
		return nil, nil, errNoConversation(sid)
	}
	return cv, sh, nil
}

// svcShopAsAgent finds a shop the caller is an agent of.
func (c *Core) svcShopAsAgent(id Identity, shop string) (*svcShop, error) {
	if shop == "" {
		return nil, Errf(CodeBadRequest, "missing shop")
	}
	sh := c.svc.shops[id.App+"\x00"+shop]
	if sh == nil {
		return nil, errUnknownShop(shop)
	}
	if sh.agent(id.UID) == nil {
		return nil, errNotAgent(shop)
	}
	return sh, nil
}

// svcSetStatus sets the caller's status in one shop, or in all of theirs.
func (c *Core) svcSetStatus(ctx context.Context, id Identity, shop, status string) ([]AgentView, error) {
	st := c.svc
	if status != AgentOnline && status != AgentAway && status != AgentOffline {
		return nil, Errf(CodeBadRequest, "status must be online, away or offline")
	}
	var as []*svcAgent
	for _, a := range st.agentsOf[userKey(id.App, id.UID)] {
		if shop == "" || a.rec.Shop == shop {
			as = append(as, a)
		}
	}
	if len(as) == 0 {
		if shop != "" && st.shops[id.App+"\x00"+shop] == nil {
			return nil, errUnknownShop(shop)
		}
		if shop != "" {
			return nil, errNotAgent(shop)
		}
		return nil, Errf(CodeForbidden, "not an agent of any shop")
	}
	now := c.nowMS()
	puts := make([]svcPut, len(as))
	nexts := make([]Agent, len(as))
	for i, a := range as {
		nexts[i] = a.rec
		nexts[i].Status, nexts[i].UpdatedAt = status, now
		puts[i] = svcPut{svcKindAgent, svcAgentKey(id.App, a.rec.Shop, id.UID), &nexts[i]}
	}
	if err := c.svcCommit(ctx, nil, puts); err != nil {
		return nil, err
	}
	out := make([]AgentView, len(as))
	for i, a := range as {
		a.rec = nexts[i]
		if status == AgentOnline && !a.connected {
			st.watch[a] = struct{}{}
		}
		c.svcReeval(ctx, a.shop)
		out[i] = c.svcAgentView(a, now)
	}
	return out, nil
}

// svcTransfer hands cv to another agent (r.To) or back to the head of the
// queue (r.Queue). The note goes to the shop's agents only.
func (c *Core) svcTransfer(ctx context.Context, sh *svcShop, cv *svcConv, r *serviceRequest, by string) (any, error) {
	if cv.rec.Status != ServiceOpen {
		return nil, Errf(CodeConflict, "conversation "+itoa(uint64(cv.rec.Session))+" is "+cv.rec.Status+", not open: nothing to transfer")
	}
	switch {
	case r.Queue && r.To != "":
		return nil, Errf(CodeBadRequest, "give to or queue, not both")
	case r.Queue:
		prev := cv.rec.Agent
		if err := c.svcEnqueue(ctx, sh, cv, true, "transferred", by, r.Note); err != nil {
			return nil, err
		}
		cv.avoid = prev
		c.svcDrain(ctx, sh)
	case r.To == "":
		return nil, Errf(CodeBadRequest, "missing to (an agent's uid) or queue:true")
	default:
		a := sh.agent(r.To)
		if a == nil {
			return nil, Errf(CodeNotFound, "\""+clip(r.To, 64)+"\" is not an agent of shop \""+sh.rec.ID+"\"")
		}
		if a.rec.UID == cv.rec.Agent {
			return nil, Errf(CodeConflict, "conversation "+itoa(uint64(cv.rec.Session))+" is already assigned to "+a.rec.UID)
		}
		if err := c.svcAssign(ctx, sh, cv, a, "transferred", by, r.Note); err != nil {
			return nil, err
		}
		c.svcDrain(ctx, sh) // the previous agent has room again
	}
	return c.svcView(cv), nil
}

func (c *Core) svcView(cv *svcConv) ServiceView {
	v := ServiceView{ServiceConversation: cv.rec}
	if cv.rec.Status == ServiceQueued {
		if sh := c.svc.shops[cv.rec.App+"\x00"+cv.rec.Shop]; sh != nil {
			v.Position = sh.position(cv)
		}
	}
	return v
}

func (c *Core) svcAgentView(a *svcAgent, now int64) AgentView {
	return AgentView{Agent: a.rec, Effective: effName(a.effective(now)), Open: a.open, Connected: a.connected}
}

func (c *Core) svcAgents(sh *svcShop) []AgentView {
	now := c.nowMS()
	out := make([]AgentView, len(sh.agents))
	for i, a := range sh.agents {
		out[i] = c.svcAgentView(a, now)
	}
	return out
}

func (c *Core) svcQueue(sh *svcShop) []QueueEntry {
	now := c.nowMS()
	out := make([]QueueEntry, len(sh.queue))
	for i, cv := range sh.queue {
		out[i] = QueueEntry{Session: cv.rec.Session, Customer: cv.rec.Customer, Position: i + 1,
			QueuedAt: cv.rec.QueuedAt, WaitingMS: max(now-cv.rec.QueuedAt, 0), LastAgent: cv.rec.LastAgent}
	}
	return out
}

// ---- the host's actions

// ServiceHost runs one customer-service action of the host (the signed
// server API) for app. req is the request JSON: {"action": …, fields}.
func (c *Core) ServiceHost(ctx context.Context, app string, req []byte) (any, error) {
	if !c.owns() {
		return nil, errOwnerChanging // a cluster node not serving the domains: none holds the lease, this one is loading, or it moved (owner.go)
	}
	r, err := decodeServiceRequest(req)
	if err != nil {
		return nil, err
	}
	st := c.svc
	st.mu.Lock()
	defer st.mu.Unlock()
	switch r.Action {
	case "shop_put":
		return c.svcPutShop(ctx, app, r)
	case "shops":
		out := []Shop{}
		for _, sh := range st.shops {
			if sh.rec.App == app {
				out = append(out, sh.rec)
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
		return out, nil
	case "shop":
		sh, err := c.svcHostShop(app, r.Shop)
		if err != nil {
			return nil, err
		}
		return sh.rec, nil
	case "agent_put":
		return c.svcPutAgent(ctx, app, r)
	case "agent_remove":
		sh, err := c.svcHostShop(app, r.Shop)
		if err != nil {
			return nil, err
		}
		a := sh.agent(r.UID)
		if a == nil {
			return nil, Errf(CodeNotFound, "\""+clip(r.UID, 64)+"\" is not an agent of shop \""+sh.rec.ID+"\"")
		}
		c.svcRequeueAgent(ctx, sh, a, "host")
		if err := c.svcCommit(ctx, nil, []svcPut{{svcKindAgent, svcAgentKey(app, sh.rec.ID, a.rec.UID), nil}}); err != nil {
			return nil, err
		}
		for i, x := range sh.agents {
			if x == a {
				sh.agents = append(sh.agents[:i], sh.agents[i+1:]...)
				break
			}
		}
		k := userKey(app, a.rec.UID)
		list := st.agentsOf[k]
		for i, x := range list {
			if x == a {
				st.agentsOf[k] = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		delete(st.watch, a)
		c.svcDrain(ctx, sh)
		return map[string]bool{"removed": true}, nil
	case "agents":
		sh, err := c.svcHostShop(app, r.Shop)
		if err != nil {
			return nil, err
		}
		return c.svcAgents(sh), nil
	case "conversation", "transfer", "resolve":
		if r.SessionID == 0 {
			return nil, Errf(CodeBadRequest, "missing session_id")
		}
		cv := st.convs[r.SessionID]
		if cv == nil || cv.rec.App != app {
			return nil, errNoConversation(r.SessionID)
		}
		sh := st.shops[app+"\x00"+cv.rec.Shop]
		switch r.Action {
		case "transfer":
			return c.svcTransfer(ctx, sh, cv, r, "host")
		case "resolve":
			if cv.rec.Status == ServiceResolved {
				return nil, Errf(CodeConflict, "conversation "+itoa(uint64(cv.rec.Session))+" is already resolved")
			}
			if err := c.svcResolve(ctx, sh, cv, "host"); err != nil {
				return nil, err
			}
			c.svcDrain(ctx, sh)
		}
		return c.svcView(cv), nil
	case "conversations":
		if r.Shop != "" {
			if _, err := c.svcHostShop(app, r.Shop); err != nil {
				return nil, err
			}
		}
		if r.Status != "" && r.Status != ServiceQueued && r.Status != ServiceOpen && r.Status != ServiceResolved {
			return nil, Errf(CodeBadRequest, "status must be queued, open or resolved")
		}
		out := []ServiceView{}
		for _, cv := range st.convs {
			x := &cv.rec
			if x.App != app || (r.Shop != "" && x.Shop != r.Shop) || (r.Status != "" && x.Status != r.Status) ||
				(r.Agent != "" && x.Agent != r.Agent && x.LastAgent != r.Agent) ||
				(r.Since > 0 && x.CreatedAt < r.Since) || (r.Until > 0 && x.CreatedAt >= r.Until) {
				continue
			}
			out = append(out, c.svcView(cv))
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Session < out[j].Session })
		if r.Limit > 0 && len(out) > r.Limit {
			out = out[:r.Limit]
		}
		return out, nil
	case "":
		return nil, Errf(CodeBadRequest, "missing action; actions are "+strings.Join(ServiceHostActions, ", "))
	}
	if v, ok, err := c.svcHostExtra(ctx, app, r); ok {
		return v, err
	}
	return nil, Errf(CodeBadRequest, "unknown action \""+clip(r.Action, 40)+"\"; actions are "+strings.Join(ServiceHostActions, ", "))
}

func (c *Core) svcHostShop(app, shop string) (*svcShop, error) {
	if shop == "" {
		return nil, Errf(CodeBadRequest, "missing shop")
	}
	sh := c.svc.shops[app+"\x00"+shop]
	if sh == nil {
		return nil, errUnknownShop(shop)
	}
	return sh, nil
}

func checkShopSettings(s *ShopSettings) error {
	switch s.Strategy {
	case "":
		s.Strategy = StrategyBalanced
	case StrategyBalanced, StrategyRoundRobin, StrategyManual:
	default:
		return Errf(CodeBadRequest, "settings.strategy must be balanced, round_robin or manual")
	}
	switch s.AgentGone {
	case "":
		s.AgentGone = AgentGoneKeep
	case AgentGoneKeep, AgentGoneRequeue:
	default:
		return Errf(CodeBadRequest, "settings.agent_gone must be keep or requeue")
	}
	if s.AutoResolveMinutes < 0 || s.AutoResolveMinutes > 525600 {
		return Errf(CodeBadRequest, "settings.auto_resolve_minutes must be between 0 (never) and 525600")
	}
	if s.GraceSeconds < 0 || s.GraceSeconds > 86400 {
		return Errf(CodeBadRequest, "settings.grace_seconds must be between 0 (the default, 60) and 86400")
	}
	switch s.OutsideHours {
	case "":
		s.OutsideHours = "queue"
	case "queue", "refuse":
	default:
		return Errf(CodeBadRequest, "settings.outside_hours must be queue or refuse")
	}
	for name, v := range map[string]string{"welcome": s.Welcome, "offline": s.Offline, "out_of_office": s.OutOfOffice} {
		if len(v) > 4096 || !utf8.ValidString(v) {
			return Errf(CodeBadRequest, "settings."+name+" must be valid UTF-8 of at most 4096 bytes")
		}
	}
	return nil
}

// svcPutShop creates a shop or updates the fields given.
func (c *Core) svcPutShop(ctx context.Context, app string, r *serviceRequest) (*Shop, error) {
	st := c.svc
	if !validName(r.Shop, 64) {
		return nil, Errf(CodeBadRequest, "shop must be 1–64 characters of a-z, 0-9, _ and -")
	}
	now := c.nowMS()
	sh := st.shops[app+"\x00"+r.Shop]
	var next Shop
	if sh != nil {
		next = sh.rec
	} else {
		next = Shop{App: app, ID: r.Shop, CreatedAt: now}
	}
	if r.Name != nil {
		next.Name = *r.Name
	}
	if r.Avatar != nil {
		next.Avatar = *r.Avatar
	}
	if next.Name == "" {
		next.Name = r.Shop
	}
	if len(next.Name) > 128 || !utf8.ValidString(next.Name) {
		return nil, Errf(CodeBadRequest, "name must be valid UTF-8 of at most 128 bytes")
	}
	if next.Avatar != "" {
		if e := urlError("avatar", checkURL(next.Avatar)); checkURL(next.Avatar) != "" {
			return nil, e
		}
	}
	if r.Settings != nil {
		next.Settings = *r.Settings
	}
	if err := checkShopSettings(&next.Settings); err != nil {
		return nil, err
	}
	var hours *hoursPlan
	if next.Settings.Hours != nil {
		var err error
		if hours, err = compileHours(next.Settings.Hours); err != nil {
			return nil, err
		}
	}
	next.UpdatedAt = now
	if err := c.svcCommit(ctx, nil, []svcPut{{svcKindShop, svcShopKey(app, r.Shop), &next}}); err != nil {
		return nil, err
	}
	if sh == nil {
		sh = &svcShop{}
		st.shops[app+"\x00"+r.Shop] = sh
	}
	sh.rec, sh.hours = next, hours
	c.svcReeval(ctx, sh)
	return &next, nil
}

// svcPutAgent makes an existing user an agent of a shop, or updates the
// agent's capacity (and status, when given).
func (c *Core) svcPutAgent(ctx context.Context, app string, r *serviceRequest) (*AgentView, error) {
	st := c.svc
	sh, err := c.svcHostShop(app, r.Shop)
	if err != nil {
		return nil, err
	}
	if r.UID == "" {
		return nil, Errf(CodeBadRequest, "missing uid: which user serves the shop")
	}
	if _, err := c.store.User(ctx, app, r.UID); errors.Is(err, ErrNotFound) {
		return nil, Errf(CodeNotFound, "no user \""+clip(r.UID, 64)+"\": push the user first")
	} else if err != nil {
		return nil, err
	}
	if cv := st.customers[app+"\x00"+sh.rec.ID+"\x00"+r.UID]; cv != nil && cv.rec.Status != ServiceResolved {
		return nil, Errf(CodeConflict, "\""+r.UID+"\" has an unresolved conversation with the shop as a customer")
	}
	if r.Capacity < 0 || r.Capacity > 1000 {
		return nil, Errf(CodeBadRequest, "capacity must be between 1 and 1000 (0: unchanged, 5 for a new agent)")
	}
	if r.Status != "" && r.Status != AgentOnline && r.Status != AgentAway && r.Status != AgentOffline {
		return nil, Errf(CodeBadRequest, "status must be online, away or offline")
	}
	now := c.nowMS()
	a := sh.agent(r.UID)
	var next Agent
	if a != nil {
		next = a.rec
	} else {
		next = Agent{App: app, Shop: sh.rec.ID, UID: r.UID, Capacity: 5, Status: AgentOffline, AddedAt: now, Order: st.order + 1}
	}
	if r.Capacity > 0 {
		next.Capacity = r.Capacity
	}
	if r.Status != "" {
		next.Status = r.Status
	}
	if r.Welcome != nil {
		next.Welcome = *r.Welcome
	}
	if r.Offline != nil {
		next.Offline = *r.Offline
	}
	if len(next.Welcome) > 4096 || len(next.Offline) > 4096 || !utf8.ValidString(next.Welcome) || !utf8.ValidString(next.Offline) {
		return nil, Errf(CodeBadRequest, "welcome and offline must be valid UTF-8 of at most 4096 bytes")
	}
	next.UpdatedAt = now
	if err := c.svcCommit(ctx, nil, []svcPut{{svcKindAgent, svcAgentKey(app, sh.rec.ID, r.UID), &next}}); err != nil {
		return nil, err
	}
	if a == nil {
		st.order = next.Order
		a = &svcAgent{shop: sh, goneAt: now, connected: len(c.userRef(app, r.UID).online()) > 0}
		sh.agents = append(sh.agents, a)
		st.agentsOf[userKey(app, r.UID)] = append(st.agentsOf[userKey(app, r.UID)], a)
		st.agents.Store(userKey(app, r.UID), struct{}{})
	}
	a.rec = next
	if next.Status == AgentOnline && !a.connected {
		st.watch[a] = struct{}{}
	}
	c.svcReeval(ctx, sh)
	v := c.svcAgentView(a, now)
	return &v, nil
}
