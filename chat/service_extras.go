package chat

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Canned replies, private notes, ratings and the shop figures of customer
// service. All of it is guarded by svcState.mu like the rest.
//
// Private notes are records (svc.note), not messages: they never enter the
// session's message stream, so no path that serves messages (fan-out,
// history, sync, the server API's history) can hand one to a customer.
// Each note says after which message it was written (after_seq) so agents'
// clients can place it in the history.

const (
	svcKindCanned = "svc.canned" // app \x00 shop \x00 id (8 bytes BE) → Canned
	svcKindNote   = "svc.note"   // session (8 BE) + id (8 BE) → ServiceNote
	svcKindRating = "svc.rating" // app \x00 shop \x00 session (8 BE) + resolved_at (8 BE) → ServiceRating
)

// Canned is a shop's prepared reply; agents find it by its shortcut.
type Canned struct {
	ID        int64  `json:"canned_id"`
	App       string `json:"app"`
	Shop      string `json:"shop"`
	Shortcut  string `json:"shortcut"` // unique in the shop, e.g. "refund"
	Text      string `json:"text"`
	By        string `json:"by"` // an agent's uid or "host"
	UpdatedAt int64  `json:"updated_at"`
}

// ServiceNote is a private note on a conversation: only the shop's agents
// (and the host) read it.
type ServiceNote struct {
	Session   SessionID `json:"session_id"`
	ID        int64     `json:"note_id"`
	Shop      string    `json:"shop"`
	Agent     string    `json:"agent"`
	Text      string    `json:"text"`
	AfterSeq  uint64    `json:"after_seq"` // the conversation's last message when it was written
	CreatedAt int64     `json:"created_at"`
}

// ServiceRating is a customer's rating of one resolution.
type ServiceRating struct {
	App        string    `json:"app"`
	Shop       string    `json:"shop"`
	Session    SessionID `json:"session_id"`
	Customer   string    `json:"customer"`
	Agent      string    `json:"agent"` // who served (resolved) it
	Score      int       `json:"score"` // 1–5
	Comment    string    `json:"comment,omitempty"`
	ResolvedAt int64     `json:"resolved_at"`
	CreatedAt  int64     `json:"created_at"`
}

// RatingSummary is an average over ratings.
type RatingSummary struct {
	Count   int     `json:"count"`
	Average float64 `json:"average"`
}

// ShopFigures are a shop's live figures for the host.
type ShopFigures struct {
	Shop                  string  `json:"shop"`
	QueuedNow             int     `json:"queued_now"`
	LongestWaitMS         int64   `json:"longest_wait_ms"`
	OpenNow               int     `json:"open_now"`
	AgentsOnline          int     `json:"agents_online"`
	MedianFirstResponseMS int64   `json:"median_first_response_ms"` // over the last responses since start (up to 1000)
	FirstResponses        int     `json:"first_responses"`
	ResolvedToday         int     `json:"resolved_today"` // since midnight in the shop's hours zone (UTC without hours)
	AverageRating         float64 `json:"average_rating"`
	Ratings               int     `json:"ratings"`
}

// svcShopExtras is the part of a shop's state this file keeps.
type svcShopExtras struct {
	canned    []*Canned // by shortcut
	ratings   []ServiceRating
	firstResp []int64 // ring of the last first-response times (ms)
	firstNext int
}

const maxFirstResponses = 1000

func svcCannedKey(app, shop string, id int64) []byte {
	return binary.BigEndian.AppendUint64([]byte(app+"\x00"+shop+"\x00"), uint64(id))
}

func svcNoteKey(sid SessionID, id int64) []byte {
	return binary.BigEndian.AppendUint64(svcConvKey(sid), uint64(id))
}

func svcRatingKey(app, shop string, sid SessionID, resolvedAt int64) []byte {
	b := binary.BigEndian.AppendUint64([]byte(app+"\x00"+shop+"\x00"), uint64(sid))
	return binary.BigEndian.AppendUint64(b, uint64(resolvedAt))
}

func (c *Core) svcLoadExtras(ctx context.Context) error {
	st := c.svc
	vals, err := c.svcScan(ctx, svcKindCanned)
	if err != nil {
		return err
	}
	for _, b := range vals {
		var r Canned
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		if sh := st.shops[r.App+"\x00"+r.Shop]; sh != nil {
			sh.canned = append(sh.canned, &r)
		}
		st.cannedSeq = max(st.cannedSeq, r.ID)
	}
	vals, err = c.svcScan(ctx, svcKindRating)
	if err != nil {
		return err
	}
	for _, b := range vals {
		var r ServiceRating
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		if sh := st.shops[r.App+"\x00"+r.Shop]; sh != nil {
			sh.ratings = append(sh.ratings, r)
		}
	}
	for _, sh := range st.shops {
		sortCanned(sh.canned)
	}
	return nil
}

func sortCanned(cs []*Canned) {
	sort.Slice(cs, func(i, j int) bool { return cs[i].Shortcut < cs[j].Shortcut })
}

// svcFirstResponse records how long an agent took to answer after an
// assignment (called in its own goroutine by the message path).
func (c *Core) svcFirstResponse(app, shop string, ms int64) {
	st := c.svc
	st.mu.Lock()
	defer st.mu.Unlock()
	sh := st.shops[app+"\x00"+shop]
	if sh == nil {
		return
	}
	ms = max(ms, 0)
	if len(sh.firstResp) < maxFirstResponses {
		sh.firstResp = append(sh.firstResp, ms)
		return
	}
	sh.firstResp[sh.firstNext] = ms
	sh.firstNext = (sh.firstNext + 1) % maxFirstResponses
}

// ---- client actions

func (c *Core) svcClientExtra(ctx context.Context, id Identity, action string, r *serviceRequest) (any, bool, error) {
	switch action {
	case "service_canned", "service_canned_put", "service_canned_delete":
		sh, err := c.svcShopAsAgent(id, r.Shop)
		if err != nil {
			return nil, true, err
		}
		v, err := c.svcCanned(ctx, sh, strings.TrimPrefix(action, "service_"), id.UID, r)
		return v, true, err
	case "service_note":
		cv, sh, err := c.svcConvFor(id, r.SessionID, false)
		if err != nil {
			return nil, true, err
		}
		v, err := c.svcNote(ctx, sh, cv, id.UID, r.Text)
		return v, true, err
	case "service_notes":
		cv, _, err := c.svcConvFor(id, r.SessionID, false)
		if err != nil {
			return nil, true, err
		}
		v, err := c.svcNotes(ctx, cv)
		return v, true, err
	case "service_rate":
		v, err := c.svcRate(ctx, id, r)
		return v, true, err
	}
	return nil, false, nil
}

// svcCanned runs canned, canned_put and canned_delete for by (an agent's
// uid or "host").
func (c *Core) svcCanned(ctx context.Context, sh *svcShop, action, by string, r *serviceRequest) (any, error) {
	st := c.svc
	switch action {
	case "canned":
		out := []Canned{}
		q := strings.ToLower(r.Q)
		for _, x := range sh.canned {
			if q == "" || strings.HasPrefix(x.Shortcut, q) {
				out = append(out, *x)
			}
		}
		return out, nil
	case "canned_put":
		sc := strings.ToLower(strings.TrimPrefix(r.Shortcut, "/"))
		if !validName(sc, 64) {
			return nil, Errf(CodeBadRequest, "shortcut must be 1–64 characters of a-z, 0-9, _ and - (a leading / is dropped)")
		}
		if r.Text == "" || len(r.Text) > 4096 || !utf8.ValidString(r.Text) {
			return nil, Errf(CodeBadRequest, "text must be valid UTF-8 of 1–4096 bytes")
		}
		var old *Canned
		for _, x := range sh.canned {
			if r.CannedID != 0 && x.ID == r.CannedID {
				old = x
			} else if x.Shortcut == sc {
				return nil, Errf(CodeConflict, "shortcut \""+sc+"\" is taken by canned reply "+itoa(uint64(x.ID)))
			}
		}
		if r.CannedID != 0 && old == nil {
			return nil, Errf(CodeNotFound, "no canned reply "+itoa(uint64(r.CannedID))+" in shop \""+sh.rec.ID+"\"")
		}
		next := Canned{App: sh.rec.App, Shop: sh.rec.ID, Shortcut: sc, Text: r.Text, By: by, UpdatedAt: c.nowMS()}
		if old != nil {
			next.ID = old.ID
		} else {
			next.ID = st.cannedSeq + 1
		}
		if err := c.svcCommit(ctx, nil, []svcPut{{svcKindCanned, svcCannedKey(sh.rec.App, sh.rec.ID, next.ID), &next}}); err != nil {
			return nil, err
		}
		if old != nil {
			*old = next
		} else {
			st.cannedSeq = next.ID
			sh.canned = append(sh.canned, &next)
		}
		sortCanned(sh.canned)
		return next, nil
	default: // canned_delete
		for i, x := range sh.canned {
			if x.ID == r.CannedID {
				if err := c.svcCommit(ctx, nil, []svcPut{{svcKindCanned, svcCannedKey(sh.rec.App, sh.rec.ID, x.ID), nil}}); err != nil {
					return nil, err
				}
				sh.canned = append(sh.canned[:i], sh.canned[i+1:]...)
				return map[string]bool{"deleted": true}, nil
			}
		}
		return nil, Errf(CodeNotFound, "no canned reply "+itoa(uint64(r.CannedID))+" in shop \""+sh.rec.ID+"\"")
	}
}

// svcNote stores a private note and tells the shop's agents (never the
// customer).
func (c *Core) svcNote(ctx context.Context, sh *svcShop, cv *svcConv, agent, text string) (*ServiceNote, error) {
	if text == "" || len(text) > 4096 || !utf8.ValidString(text) {
		return nil, Errf(CodeBadRequest, "text must be valid UTF-8 of 1–4096 bytes")
	}
	rec, err := c.store.Session(ctx, cv.rec.Session)
	if err != nil {
		return nil, err
	}
	now := c.nowMS()
	n := ServiceNote{Session: cv.rec.Session, ID: max(now*1000, c.svc.noteSeq+1), Shop: sh.rec.ID, Agent: agent,
		Text: text, AfterSeq: rec.LastSeq, CreatedAt: now}
	if err := c.svcCommit(ctx, nil, []svcPut{{svcKindNote, svcNoteKey(cv.rec.Session, n.ID), &n}}); err != nil {
		return nil, err
	}
	c.svc.noteSeq = n.ID
	c.svcToAgents(sh, &ServiceEvent{Type: "note", Shop: sh.rec.ID, Session: cv.rec.Session, Customer: cv.rec.Customer,
		Agent: agent, Note: text, By: agent, Time: now})
	return &n, nil
}

func (c *Core) svcNotes(ctx context.Context, cv *svcConv) ([]ServiceNote, error) {
	rs, err := c.store.ScanRecords(ctx, svcKindNote, svcConvKey(cv.rec.Session), nil, 0, false)
	if err != nil {
		return nil, err
	}
	out := make([]ServiceNote, 0, len(rs))
	for _, r := range rs {
		var n ServiceNote
		if err := json.Unmarshal(r.Value, &n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// svcRate records the customer's rating of the conversation's latest
// resolution: once, and only after it is resolved.
func (c *Core) svcRate(ctx context.Context, id Identity, r *serviceRequest) (*ServiceRating, error) {
	st := c.svc
	if r.SessionID == 0 {
		return nil, Errf(CodeBadRequest, "missing session_id")
	}
	cv := st.convs[r.SessionID]
	if cv == nil || cv.rec.App != id.App || cv.rec.Customer != id.UID {
		return nil, errNoConversation(r.SessionID)
	}
	if r.Score < 1 || r.Score > 5 {
		return nil, Errf(CodeBadRequest, "score must be 1 to 5")
	}
	if len(r.Comment) > 2000 || !utf8.ValidString(r.Comment) {
		return nil, Errf(CodeBadRequest, "comment must be valid UTF-8 of at most 2000 bytes")
	}
	switch {
	case cv.rec.Status != ServiceResolved:
		return nil, Errf(CodeConflict, "conversation "+itoa(uint64(cv.rec.Session))+" is "+cv.rec.Status+": rate it once it is resolved")
	case cv.rec.RatedAt == cv.rec.ResolvedAt:
		return nil, Errf(CodeConflict, "conversation "+itoa(uint64(cv.rec.Session))+" is already rated")
	}
	sh := st.shops[id.App+"\x00"+cv.rec.Shop]
	now := c.nowMS()
	rt := ServiceRating{App: id.App, Shop: cv.rec.Shop, Session: cv.rec.Session, Customer: id.UID, Agent: cv.rec.LastAgent,
		Score: r.Score, Comment: r.Comment, ResolvedAt: cv.rec.ResolvedAt, CreatedAt: now}
	next := cv.rec
	next.RatedAt = cv.rec.ResolvedAt
	b := &Batch{}
	c.emitWebhook(b, id.App, WebhookEvent{Type: WebhookServiceRated, Data: &rt})
	if err := c.svcCommit(ctx, b, []svcPut{
		{svcKindRating, svcRatingKey(id.App, cv.rec.Shop, cv.rec.Session, cv.rec.ResolvedAt), &rt},
		{svcKindConv, svcConvKey(cv.rec.Session), &next},
	}); err != nil {
		return nil, err
	}
	cv.rec = next
	sh.ratings = append(sh.ratings, rt)
	c.svcToAgents(sh, &ServiceEvent{Type: "rated", Shop: sh.rec.ID, Session: cv.rec.Session, Customer: id.UID,
		Agent: rt.Agent, Score: rt.Score, By: id.UID, Time: now})
	return &rt, nil
}

// ---- host actions

func (c *Core) svcHostExtra(ctx context.Context, app string, r *serviceRequest) (any, bool, error) {
	switch r.Action {
	case "canned", "canned_put", "canned_delete":
		sh, err := c.svcHostShop(app, r.Shop)
		if err != nil {
			return nil, true, err
		}
		v, err := c.svcCanned(ctx, sh, r.Action, "host", r)
		return v, true, err
	case "notes":
		cv := c.svc.convs[r.SessionID]
		if cv == nil || cv.rec.App != app {
			return nil, true, errNoConversation(r.SessionID)
		}
		v, err := c.svcNotes(ctx, cv)
		return v, true, err
	case "ratings":
		sh, err := c.svcHostShop(app, r.Shop)
		if err != nil {
			return nil, true, err
		}
		return c.svcRatings(sh, r.Agent, r.Limit), true, nil
	case "figures":
		sh, err := c.svcHostShop(app, r.Shop)
		if err != nil {
			return nil, true, err
		}
		return c.svcFigures(sh), true, nil
	}
	return nil, false, nil
}

// RatingsReport is the host's view of a shop's ratings.
type RatingsReport struct {
	Shop    RatingSummary            `json:"shop"`
	ByAgent map[string]RatingSummary `json:"by_agent"`
	Ratings []ServiceRating          `json:"ratings"` // newest first (up to limit)
}

func (c *Core) svcRatings(sh *svcShop, agent string, limit int) *RatingsReport {
	rep := &RatingsReport{ByAgent: map[string]RatingSummary{}, Ratings: []ServiceRating{}}
	sums := map[string]int{}
	total := 0
	for _, r := range sh.ratings {
		total += r.Score
		rep.Shop.Count++
		sums[r.Agent] += r.Score
		s := rep.ByAgent[r.Agent]
		s.Count++
		rep.ByAgent[r.Agent] = s
	}
	if rep.Shop.Count > 0 {
		rep.Shop.Average = float64(total) / float64(rep.Shop.Count)
	}
	for a, s := range rep.ByAgent {
		s.Average = float64(sums[a]) / float64(s.Count)
		rep.ByAgent[a] = s
	}
	if limit <= 0 || limit > MaxPage {
		limit = MaxPage
	}
	for i := len(sh.ratings) - 1; i >= 0 && len(rep.Ratings) < limit; i-- {
		if agent == "" || sh.ratings[i].Agent == agent {
			rep.Ratings = append(rep.Ratings, sh.ratings[i])
		}
	}
	sort.SliceStable(rep.Ratings, func(i, j int) bool { return rep.Ratings[i].CreatedAt > rep.Ratings[j].CreatedAt })
	return rep
}

func (c *Core) svcFigures(sh *svcShop) *ShopFigures {
	now := c.nowMS()
	f := &ShopFigures{Shop: sh.rec.ID, QueuedNow: len(sh.queue)}
	for _, cv := range sh.queue {
		f.LongestWaitMS = max(f.LongestWaitMS, now-cv.rec.QueuedAt)
	}
	for _, a := range sh.agents {
		if a.effective(now) {
			f.AgentsOnline++
		}
		f.OpenNow += a.open
	}
	loc := time.UTC
	if sh.hours != nil {
		loc = sh.hours.loc
	}
	t := time.UnixMilli(now).In(loc)
	midnight := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc).UnixMilli()
	for _, cv := range c.svc.convs {
		if cv.rec.App == sh.rec.App && cv.rec.Shop == sh.rec.ID && cv.rec.Status == ServiceResolved && cv.rec.ResolvedAt >= midnight {
			f.ResolvedToday++
		}
	}
	if n := len(sh.firstResp); n > 0 {
		xs := append([]int64(nil), sh.firstResp...)
		sort.Slice(xs, func(i, j int) bool { return xs[i] < xs[j] })
		f.FirstResponses = n
		if n%2 == 1 {
			f.MedianFirstResponseMS = xs[n/2]
		} else {
			f.MedianFirstResponseMS = (xs[n/2-1] + xs[n/2]) / 2
		}
	}
	total := 0
	for _, r := range sh.ratings {
		total += r.Score
	}
	if f.Ratings = len(sh.ratings); f.Ratings > 0 {
		f.AverageRating = float64(total) / float64(f.Ratings)
	}
	return f
}
