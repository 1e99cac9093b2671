package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatd/chat"
	"chatd/chat/memstore"
)

// fakeClock is the core's replaced clock: it moves only when the test
// moves it.
type fakeClock struct{ ms atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ms.Store(1_800_000_000_000)
	return c
}

func (c *fakeClock) now() time.Time      { return time.UnixMilli(c.ms.Load()) }
func (c *fakeClock) add(d time.Duration) { c.ms.Add(d.Milliseconds()) }
func (c *fakeClock) set(ms int64)        { c.ms.Store(ms) }
func (c *fakeClock) cfg(cc chat.ConsultConfig) chat.Config {
	return chat.Config{Now: c.now, Consult: cc}
}

type consultEnv struct {
	*env
	clock *fakeClock
}

func newConsultEnv(t *testing.T, cc chat.ConsultConfig) *consultEnv {
	clk := newFakeClock()
	return &consultEnv{env: newEnv(t, clk.cfg(cc)), clock: clk}
}

func (e *consultEnv) create(in chat.ConsultInput) *chat.ConsultView {
	e.t.Helper()
	v, err := e.core.CreateConsultation(context.Background(), e.app.ID, in)
	if err != nil {
		e.t.Fatalf("create %+v: %v", in, err)
	}
	return v
}

func (e *consultEnv) host(id chat.SessionID, ch chat.ConsultChange) (*chat.ConsultView, error) {
	return e.core.ConsultAct(context.Background(), e.app.ID, id, "", ch)
}

func (e *consultEnv) tick(d time.Duration) {
	e.clock.add(d)
	e.core.ConsultTick(context.Background())
}

func (e *consultEnv) state(id chat.SessionID) *chat.ConsultView {
	e.t.Helper()
	v, err := e.core.Consultation(context.Background(), e.app.ID, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

func errCode(t *testing.T, err error, code chat.Code, contains string) {
	t.Helper()
	var ce *chat.Error
	if !errors.As(err, &ce) || ce.Code != code || !strings.Contains(ce.Message, contains) {
		t.Fatalf("got %v, want %s containing %q", err, code, contains)
	}
}

func frameErr(t *testing.T, f frame, code chat.Code, contains string) {
	t.Helper()
	if f.OK || f.Error == nil || f.Error.Code != code || !strings.Contains(f.Error.Message, contains) {
		t.Fatalf("got ok=%v %+v, want %s containing %q", f.OK, f.Error, code, contains)
	}
}

type consultEv struct {
	SessionID        uint64              `json:"session_id"`
	Type             string              `json:"type"`
	Op               string              `json:"op"`
	By               string              `json:"by"`
	State            string              `json:"state"`
	RemainingSeconds int64               `json:"remaining_seconds"`
	Warning          int64               `json:"warning_seconds"`
	Reason           string              `json:"reason"`
	Record           *chat.ConsultRecord `json:"record"`
}

func consultEvent(typ, op string) func(frame) bool {
	return func(f frame) bool {
		if f.Event != "consult" {
			return false
		}
		var ev consultEv
		_ = json.Unmarshal(f.Data, &ev)
		return ev.Type == typ && (op == "" || ev.Op == op)
	}
}

// consultRemaining matches the count-down event with n seconds left.
func consultRemaining(n int64) func(frame) bool {
	return func(f frame) bool {
		if !consultEvent("remaining", "")(f) {
			return false
		}
		var ev consultEv
		_ = json.Unmarshal(f.Data, &ev)
		return ev.RemainingSeconds == n
	}
}

// The whole life over the client protocol: the customer asks first, the
// consultant accepts, they chat, pause, the host extends, the count-down
// and warnings arrive, the time runs out exactly at the deadline, later
// sends are refused and the history stays readable.
func TestConsultLifeOverClientProtocol(t *testing.T) {
	e := newConsultEnv(t, chat.ConsultConfig{})
	tl, tc, to := e.user("lawyer"), e.user("cust"), e.user("other")
	law, cust, other := e.login(tl), e.login(tc), e.login(to)

	v := e.create(chat.ConsultInput{Consultant: "lawyer", Customer: "cust", Seconds: 900, PricePerMinute: 200, Currency: "CNY", Ref: "order-1"})
	if v.State != chat.ConsultPending || v.RemainingSeconds != 900 {
		t.Fatalf("created %+v", v)
	}
	sid := v.ID
	created := data[consultEv](t, law.wait(t, consultEvent("state", "created")))
	if created.State != "pending" || created.SessionID != uint64(sid) {
		t.Fatalf("created event %+v", created)
	}
	cust.wait(t, consultEvent("state", "created"))

	// Before the start: the customer's first question goes, the consultant must accept first.
	if f := cust.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"a question"}`, sid)); !f.OK {
		t.Fatalf("first question: %+v", f.Error)
	}
	frameErr(t, law.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"hello"}`, sid)),
		chat.CodeForbidden, "not started")
	// Outsiders and the wrong party.
	frameErr(t, other.do(fmt.Sprintf(`"action":"consult_accept","session_id":%d`, sid)), chat.CodeForbidden, "not the consultant or the customer")
	frameErr(t, cust.do(fmt.Sprintf(`"action":"consult_accept","session_id":%d`, sid)), chat.CodeForbidden, "customer may not accept")
	frameErr(t, law.do(fmt.Sprintf(`"action":"consult_pause","session_id":%d`, sid)), chat.CodeConflict, "cannot pause a consultation that is pending")
	frameErr(t, law.do(`"action":"consult_accept"`), chat.CodeBadRequest, "missing session_id")
	frameErr(t, law.do(`"action":"consult_accept","session_id":999999`), chat.CodeNotFound, "no consultation 999999")
	frameErr(t, law.do(fmt.Sprintf(`"action":"consult_extend","session_id":%d`, sid)), chat.CodeBadRequest, "unknown action")

	e.clock.add(5 * time.Second) // pending time is free
	f := law.do(fmt.Sprintf(`"action":"consult_accept","session_id":%d`, sid))
	if !f.OK {
		t.Fatalf("accept: %+v", f.Error)
	}
	acc := data[chat.ConsultView](t, f)
	start := e.clock.ms.Load()
	if acc.State != chat.ConsultActive || acc.StartedAt != start || acc.Deadline != start+900_000 {
		t.Fatalf("accepted %+v", acc)
	}
	if ev := data[consultEv](t, cust.wait(t, consultEvent("state", "accept"))); ev.By != "lawyer" || ev.RemainingSeconds != 900 {
		t.Fatalf("accept event %+v", ev)
	}
	if f := law.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"answer"}`, sid)); !f.OK {
		t.Fatalf("send while active: %+v", f.Error)
	}
	// The session list shows the state and the remaining time.
	e.clock.add(100 * time.Second)
	f = law.do(`"action":"sessions"`)
	list := data[struct {
		Sessions []chat.SessionView `json:"sessions"`
	}](t, f)
	if len(list.Sessions) != 1 || list.Sessions[0].Kind != "consult" || list.Sessions[0].Consult == nil ||
		list.Sessions[0].Consult.State != chat.ConsultActive || list.Sessions[0].Consult.RemainingSeconds != 800 {
		t.Fatalf("sessions %s", f.Data)
	}
	// Pause 60 s (not consumed), resume, the host extends while paused and while active.
	if f := law.do(fmt.Sprintf(`"action":"consult_pause","session_id":%d`, sid)); !f.OK {
		t.Fatalf("pause: %+v", f.Error)
	}
	e.clock.add(60 * time.Second)
	if _, err := e.host(sid, chat.ConsultChange{Op: chat.ConsultExtend, Seconds: 60, Ref: "order-2"}); err != nil {
		t.Fatal(err)
	}
	if f := law.do(fmt.Sprintf(`"action":"consult_resume","session_id":%d`, sid)); !f.OK {
		t.Fatalf("resume: %+v", f.Error)
	}
	if v := e.state(sid); v.RemainingSeconds != 860 || v.PausedMS != 60_000 {
		t.Fatalf("after pause and extend: %+v", v)
	}
	if _, err := e.host(sid, chat.ConsultChange{Op: chat.ConsultExtend, Seconds: 240, Ref: "order-3"}); err != nil {
		t.Fatal(err)
	}
	// 1100 s left. The clock: a count-down 10 s after the last change.
	e.tick(10 * time.Second)
	// The clock goroutine runs on real timers and may already have sent a
	// count-down for a moment the fake clock passed through (800 s left,
	// before the pause): wait for this one.
	if ev := data[consultEv](t, cust.wait(t, consultRemaining(1090))); ev.RemainingSeconds != 1090 {
		t.Fatalf("remaining event %+v", ev)
	}
	// Run to 5 minutes left: the warning.
	e.tick(790 * time.Second)
	if ev := data[consultEv](t, law.wait(t, consultEvent("warning", ""))); ev.Warning != 300 || ev.RemainingSeconds != 300 {
		t.Fatalf("warning %+v", ev)
	}
	dl := e.state(sid).Deadline
	e.clock.set(dl - 1)
	e.core.ConsultTick(context.Background())
	if v := e.state(sid); v.State != chat.ConsultActive {
		t.Fatalf("ended 1 ms early: %+v", v)
	}
	e.clock.set(dl)
	e.core.ConsultTick(context.Background())
	end := data[consultEv](t, cust.wait(t, consultEvent("state", "time_up")))
	if end.State != "ended" || end.Reason != "time_up" || end.Record == nil {
		t.Fatalf("end event %+v", end)
	}
	r := end.Record
	if r.ActiveSeconds != 1200 || r.BilledSeconds != 1200 || r.PausedSeconds != 60 || r.Amount != 20*200 ||
		r.EndedAt != dl || r.StartedAt != start || len(r.Extensions) != 2 || r.Extensions[1].Ref != "order-3" || r.Ref != "order-1" {
		t.Fatalf("record %+v", r)
	}
	stored, err := e.core.ConsultRecord(context.Background(), e.app.ID, sid)
	if err != nil || stored.Amount != r.Amount || stored.EndReason != chat.EndTimeUp {
		t.Fatalf("stored record %+v %v", stored, err)
	}
	// After the end: sends refused, history readable, actions refused.
	frameErr(t, cust.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"one more"}`, sid)),
		chat.CodeForbidden, "the consultation has ended")
	if _, err := e.core.Send(context.Background(), e.app.ID, chat.SendInput{From: "lawyer", Session: sid, Type: "text", Content: []byte(`{"text":"x"}`)}); err == nil {
		t.Fatal("server API send as the consultant after the end was stored")
	}
	h := law.do(fmt.Sprintf(`"action":"history","session_id":%d`, sid))
	if !h.OK || !strings.Contains(string(h.Data), "a question") || !strings.Contains(string(h.Data), "answer") {
		t.Fatalf("history after the end: %s %+v", h.Data, h.Error)
	}
	frameErr(t, law.do(fmt.Sprintf(`"action":"consult_end","session_id":%d`, sid)), chat.CodeConflict, "has ended")
	_, err = e.host(sid, chat.ConsultChange{Op: chat.ConsultExtend, Seconds: 60})
	errCode(t, err, chat.CodeConflict, "has ended")
}

func TestConsultStartRulesInCore(t *testing.T) {
	t.Run("first_reply", func(t *testing.T) {
		e := newConsultEnv(t, chat.ConsultConfig{})
		tl, tc := e.user("lawyer"), e.user("cust")
		law, cust := e.login(tl), e.login(tc)
		v := e.create(chat.ConsultInput{Consultant: "lawyer", Customer: "cust", Seconds: 60, Start: chat.StartFirstReply})
		if f := cust.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"q"}`, v.ID)); !f.OK {
			t.Fatal(f.Error)
		}
		if e.state(v.ID).State != chat.ConsultPending {
			t.Fatal("the customer's message started the clock")
		}
		e.clock.add(30 * time.Second)
		at := e.clock.ms.Load()
		if f := law.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"a"}`, v.ID)); !f.OK {
			t.Fatal(f.Error)
		}
		s := e.state(v.ID)
		if s.State != chat.ConsultActive || s.StartedAt != at || s.Deadline != at+60_000 {
			t.Fatalf("after the first reply %+v", s)
		}
		ev := data[consultEv](t, cust.wait(t, consultEvent("state", "first_reply")))
		if ev.By != "lawyer" {
			t.Fatalf("event %+v", ev)
		}
		// The start was committed with the message: a new core on the same store sees it.
		e.stop()
		c2, err := chat.New(chat.Config{Now: e.clock.now}, e.store)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c2.Consultation(context.Background(), e.app.ID, v.ID)
		if err != nil || got.State != chat.ConsultActive || got.StartedAt != at {
			t.Fatalf("after restart %+v %v", got, err)
		}
	})
	t.Run("now", func(t *testing.T) {
		e := newConsultEnv(t, chat.ConsultConfig{})
		e.user("lawyer")
		e.user("cust")
		v := e.create(chat.ConsultInput{Consultant: "lawyer", Customer: "cust", Seconds: 60, Start: chat.StartNow})
		if v.State != chat.ConsultActive || v.Deadline != e.clock.ms.Load()+60_000 {
			t.Fatalf("%+v", v)
		}
		e.tick(60 * time.Second)
		if s := e.state(v.ID); s.State != chat.ConsultEnded || s.EndReason != chat.EndTimeUp {
			t.Fatalf("%+v", s)
		}
	})
}

func TestConsultDeclineExpireCancel(t *testing.T) {
	e := newConsultEnv(t, chat.ConsultConfig{PendingTTL: 2 * time.Minute})
	tl := e.user("lawyer")
	e.user("cust")
	law := e.login(tl)
	a := e.create(chat.ConsultInput{Consultant: "lawyer", Customer: "cust", Seconds: 60})
	if f := law.do(fmt.Sprintf(`"action":"consult_decline","session_id":%d`, a.ID)); !f.OK {
		t.Fatal(f.Error)
	}
	b := e.create(chat.ConsultInput{Consultant: "lawyer", Customer: "cust", Seconds: 60})
	c := e.create(chat.ConsultInput{Consultant: "lawyer", Customer: "cust", Seconds: 60, ExpiresIn: 600})
	if _, err := e.host(c.ID, chat.ConsultChange{Op: chat.ConsultCancel}); err != nil {
		t.Fatal(err)
	}
	e.tick(2*time.Minute - time.Millisecond)
	if e.state(b.ID).State != chat.ConsultPending {
		t.Fatal("expired early")
	}
	e.tick(time.Millisecond)
	for _, tc := range []struct {
		name   string
		id     chat.SessionID
		state  chat.ConsultState
		reason chat.EndReason
	}{
		{name: "declined", id: a.ID, state: chat.ConsultCancelled, reason: chat.EndDeclined},
		{name: "expired", id: b.ID, state: chat.ConsultExpired, reason: chat.EndExpired},
		{name: "cancelled", id: c.ID, state: chat.ConsultCancelled, reason: chat.EndCancelled},
	} {
		r, err := e.core.ConsultRecord(context.Background(), e.app.ID, tc.id)
		if err != nil || r.State != tc.state || r.EndReason != tc.reason || r.BilledSeconds != 0 || r.Amount != 0 {
			t.Errorf("%s: %+v %v", tc.name, r, err)
		}
	}
}

func TestConsultEarlyEndByEachParty(t *testing.T) {
	e := newConsultEnv(t, chat.ConsultConfig{})
	tl, tc := e.user("lawyer"), e.user("cust")
	law, cust := e.login(tl), e.login(tc)
	for _, tcase := range []struct {
		name   string
		end    func(id chat.SessionID) error
		reason chat.EndReason
	}{
		{name: "consultant", reason: chat.EndByConsultant, end: func(id chat.SessionID) error {
			if f := law.do(fmt.Sprintf(`"action":"consult_end","session_id":%d`, id)); !f.OK {
				return f.Error
			}
			return nil
		}},
		{name: "customer", reason: chat.EndByCustomer, end: func(id chat.SessionID) error {
			if f := cust.do(fmt.Sprintf(`"action":"consult_end","session_id":%d`, id)); !f.OK {
				return f.Error
			}
			return nil
		}},
		{name: "host", reason: chat.EndByHost, end: func(id chat.SessionID) error {
			_, err := e.host(id, chat.ConsultChange{Op: chat.ConsultEnd})
			return err
		}},
	} {
		t.Run(tcase.name, func(t *testing.T) {
			v := e.create(chat.ConsultInput{Consultant: "lawyer", Customer: "cust", Seconds: 600, PricePerMinute: 100, Start: chat.StartNow})
			e.clock.add(61 * time.Second)
			if err := tcase.end(v.ID); err != nil {
				t.Fatal(err)
			}
			r, err := e.core.ConsultRecord(context.Background(), e.app.ID, v.ID)
			if err != nil || r.EndReason != tcase.reason || r.ActiveSeconds != 61 || r.Amount != 200 {
				t.Fatalf("%+v %v", r, err)
			}
		})
	}
}

func TestConsultBadInput(t *testing.T) {
	e := newConsultEnv(t, chat.ConsultConfig{MaxPerConsultant: 2})
	e.user("lawyer")
	e.user("cust")
	ctx := context.Background()
	neg := int64(-1)
	for _, tc := range []struct {
		name     string
		in       chat.ConsultInput
		code     chat.Code
		contains string
	}{
		{name: "unknown consultant", in: chat.ConsultInput{Consultant: "ghost", Customer: "cust", Seconds: 60}, code: chat.CodeNotFound, contains: "ghost"},
		{name: "unknown customer", in: chat.ConsultInput{Consultant: "lawyer", Customer: "ghost", Seconds: 60}, code: chat.CodeNotFound, contains: "ghost"},
		{name: "zero seconds", in: chat.ConsultInput{Consultant: "lawyer", Customer: "cust"}, code: chat.CodeBadRequest, contains: "seconds must be a positive"},
		{name: "negative seconds", in: chat.ConsultInput{Consultant: "lawyer", Customer: "cust", Seconds: -60}, code: chat.CodeBadRequest, contains: "seconds must be a positive"},
		{name: "too long", in: chat.ConsultInput{Consultant: "lawyer", Customer: "cust", Seconds: chat.MaxConsultSeconds + 1}, code: chat.CodeBadRequest, contains: "may not exceed"},
		{name: "negative free", in: chat.ConsultInput{Consultant: "lawyer", Customer: "cust", Seconds: 60, FreeSeconds: &neg}, code: chat.CodeBadRequest, contains: "free_seconds"},
		{name: "negative price", in: chat.ConsultInput{Consultant: "lawyer", Customer: "cust", Seconds: 60, PricePerMinute: -1}, code: chat.CodeBadRequest, contains: "price_per_minute"},
		{name: "same user", in: chat.ConsultInput{Consultant: "lawyer", Customer: "lawyer", Seconds: 60}, code: chat.CodeBadRequest, contains: "two users"},
		{name: "no consultant", in: chat.ConsultInput{Customer: "cust", Seconds: 60}, code: chat.CodeBadRequest, contains: "missing consultant"},
		{name: "negative expiry", in: chat.ConsultInput{Consultant: "lawyer", Customer: "cust", Seconds: 60, ExpiresIn: -1}, code: chat.CodeBadRequest, contains: "expires_in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.core.CreateConsultation(ctx, e.app.ID, tc.in)
			errCode(t, err, tc.code, tc.contains)
		})
	}
	// The per-consultant limit counts open consultations only.
	a := e.create(chat.ConsultInput{Consultant: "lawyer", Customer: "cust", Seconds: 60})
	e.create(chat.ConsultInput{Consultant: "lawyer", Customer: "cust", Seconds: 60})
	_, err := e.core.CreateConsultation(ctx, e.app.ID, chat.ConsultInput{Consultant: "lawyer", Customer: "cust", Seconds: 60})
	errCode(t, err, chat.CodeConflict, "open consultations")
	if _, err := e.host(a.ID, chat.ConsultChange{Op: chat.ConsultCancel}); err != nil {
		t.Fatal(err)
	}
	b := e.create(chat.ConsultInput{Consultant: "lawyer", Customer: "cust", Seconds: 60})
	// Wrong state, outsiders, unknown ids, bad extensions.
	_, err = e.host(b.ID, chat.ConsultChange{Op: chat.ConsultPause})
	errCode(t, err, chat.CodeConflict, "pending")
	_, err = e.host(b.ID, chat.ConsultChange{Op: chat.ConsultExtend, Seconds: 0})
	errCode(t, err, chat.CodeBadRequest, "positive")
	_, err = e.host(b.ID, chat.ConsultChange{Op: chat.ConsultAccept})
	errCode(t, err, chat.CodeForbidden, "host may not accept")
	_, err = e.core.ConsultAct(ctx, e.app.ID, b.ID, "stranger", chat.ConsultChange{Op: chat.ConsultEnd})
	errCode(t, err, chat.CodeForbidden, "not the consultant or the customer")
	_, err = e.host(424242, chat.ConsultChange{Op: chat.ConsultEnd})
	errCode(t, err, chat.CodeNotFound, "no consultation 424242")
	_, err = e.core.ConsultRecord(ctx, e.app.ID, b.ID)
	errCode(t, err, chat.CodeNotFound, "not ended")
	_, err = e.core.ConsultRecords(ctx, e.app.ID, chat.ConsultRecordQuery{})
	errCode(t, err, chat.CodeBadRequest, "missing consultant or customer")
	_, err = e.core.ConsultRecords(ctx, e.app.ID, chat.ConsultRecordQuery{Consultant: "lawyer", After: "x"})
	errCode(t, err, chat.CodeBadRequest, "bad cursor")
	_, err = e.core.ConsultRecords(ctx, e.app.ID, chat.ConsultRecordQuery{Consultant: "lawyer", From: 10, To: 5})
	errCode(t, err, chat.CodeBadRequest, "time range")
	_, err = e.core.SetConsultantSettings(ctx, e.app.ID, "lawyer", chat.ConsultantSettings{FreeSeconds: -1})
	errCode(t, err, chat.CodeBadRequest, "free_seconds")
	_, err = e.core.SetConsultantSettings(ctx, e.app.ID, "ghost", chat.ConsultantSettings{FreeSeconds: 1})
	errCode(t, err, chat.CodeNotFound, "ghost")
}

// The consultant's free allowance is per customer, across consultations,
// consumed before paid time.
func TestConsultFreeAllowanceSetting(t *testing.T) {
	e := newConsultEnv(t, chat.ConsultConfig{Rounding: chat.RoundPerSecond})
	e.user("lawyer")
	e.user("cust")
	e.user("cust2")
	ctx := context.Background()
	if _, err := e.core.SetConsultantSettings(ctx, e.app.ID, "lawyer", chat.ConsultantSettings{FreeSeconds: 120}); err != nil {
		t.Fatal(err)
	}
	a := e.create(chat.ConsultInput{Consultant: "lawyer", Customer: "cust", Seconds: 600, PricePerMinute: 60, Start: chat.StartNow})
	if a.FreeSec != 120 || a.RemainingSeconds != 720 {
		t.Fatalf("first: %+v", a)
	}
	e.clock.add(100 * time.Second)
	if _, err := e.host(a.ID, chat.ConsultChange{Op: chat.ConsultEnd}); err != nil {
		t.Fatal(err)
	}
	b := e.create(chat.ConsultInput{Consultant: "lawyer", Customer: "cust", Seconds: 600, PricePerMinute: 60, Start: chat.StartNow})
	if b.FreeSec != 20 {
		t.Fatalf("second: free %d, want the 20 s left", b.FreeSec)
	}
	e.clock.add(50 * time.Second)
	if _, err := e.host(b.ID, chat.ConsultChange{Op: chat.ConsultEnd}); err != nil {
		t.Fatal(err)
	}
	r, _ := e.core.ConsultRecord(ctx, e.app.ID, b.ID)
	if r.FreeUsed != 20 || r.BilledSeconds != 30 || r.Amount != 30 || r.Rounding != chat.RoundPerSecond {
		t.Fatalf("second's record %+v", r)
	}
	if c := e.create(chat.ConsultInput{Consultant: "lawyer", Customer: "cust2", Seconds: 60}); c.FreeSec != 120 {
		t.Fatalf("another customer: free %d", c.FreeSec)
	}
}

func TestConsultRecordsPagingAndRange(t *testing.T) {
	e := newConsultEnv(t, chat.ConsultConfig{MaxPerConsultant: 100})
	e.user("lawyer")
	e.user("doc")
	e.user("cust")
	ctx := context.Background()
	var ends []int64
	for i := 0; i < 7; i++ {
		consultant := "lawyer"
		if i%3 == 2 {
			consultant = "doc"
		}
		v := e.create(chat.ConsultInput{Consultant: consultant, Customer: "cust", Seconds: 60, Start: chat.StartNow})
		e.clock.add(time.Duration(i+1) * time.Second)
		if _, err := e.host(v.ID, chat.ConsultChange{Op: chat.ConsultEnd}); err != nil {
			t.Fatal(err)
		}
		ends = append(ends, e.clock.ms.Load())
	}
	var all []chat.ConsultRecord
	q := chat.ConsultRecordQuery{Customer: "cust", Limit: 3}
	for pages := 0; ; pages++ {
		p, err := e.core.ConsultRecords(ctx, e.app.ID, q)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p.Records...)
		if p.Next == "" {
			if pages != 2 {
				t.Fatalf("%d pages", pages+1)
			}
			break
		}
		q.After = p.Next
	}
	if len(all) != 7 {
		t.Fatalf("%d records", len(all))
	}
	for i := range all {
		if all[i].EndedAt != ends[i] {
			t.Fatalf("record %d ended %d, want %d (oldest first)", i, all[i].EndedAt, ends[i])
		}
	}
	p, err := e.core.ConsultRecords(ctx, e.app.ID, chat.ConsultRecordQuery{Consultant: "lawyer", From: ends[1], To: ends[4]})
	if err != nil {
		t.Fatal(err)
	}
	// lawyer's consultations are 0,1,3,4,6; in [ends[1], ends[4]]: 1, 3, 4.
	if len(p.Records) != 3 || p.Records[0].EndedAt != ends[1] || p.Records[2].EndedAt != ends[4] {
		t.Fatalf("range: %+v", p.Records)
	}
	p, _ = e.core.ConsultRecords(ctx, e.app.ID, chat.ConsultRecordQuery{Consultant: "doc"})
	if len(p.Records) != 2 || p.Records[0].Consultant != "doc" {
		t.Fatalf("doc: %+v", p.Records)
	}
}

// The restart rule: after a graceful stop (Drain) a consultation resumes
// with the time it had left at the stop; after a crash, with the time it
// had left at its last saved change. Downtime is never charged.
func TestConsultRestart(t *testing.T) {
	for _, tc := range []struct {
		name     string
		graceful bool
		left     int64
	}{
		{name: "graceful", graceful: true, left: 500},
		{name: "crash", graceful: false, left: 600}, // last saved: the resume at 300 s used
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			st := memstore.New()
			e := &consultEnv{env: newEnvOn(t, clk.cfg(chat.ConsultConfig{}), st), clock: clk}
			e.user("lawyer")
			e.user("cust")
			v := e.create(chat.ConsultInput{Consultant: "lawyer", Customer: "cust", Seconds: 900, Start: chat.StartNow})
			e.clock.add(300 * time.Second)
			if _, err := e.host(v.ID, chat.ConsultChange{Op: chat.ConsultPause}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.host(v.ID, chat.ConsultChange{Op: chat.ConsultResume}); err != nil {
				t.Fatal(err)
			}
			e.clock.add(100 * time.Second)
			if tc.graceful {
				if err := e.core.Drain(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			e.stop()
			e.clock.add(2 * time.Hour) // down
			restartAt := e.clock.ms.Load()
			c2, err := chat.New(clk.cfg(chat.ConsultConfig{}), st)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- c2.Run(ctx) }()
			defer func() { cancel(); <-done }()
			got, err := c2.Consultation(ctx, "shop", v.ID)
			if err != nil || got.State != chat.ConsultActive || got.RemainingSeconds != tc.left || got.Deadline != restartAt+tc.left*1000 {
				t.Fatalf("after restart: %+v %v", got, err)
			}
			e.clock.set(got.Deadline)
			c2.ConsultTick(ctx)
			r, err := c2.ConsultRecord(ctx, "shop", v.ID)
			if err != nil || r.ActiveSeconds != 900 || r.EndReason != chat.EndTimeUp {
				t.Fatalf("record %+v %v", r, err)
			}
		})
	}
}

// 10,000 consultations with staggered ends, on the replaced clock moved in
// uneven steps under a second: every one ends within a second of its
// deadline, and gets exactly one billing record.
func TestConsult10kStaggeredEnds(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 consultations")
	}
	const n = 10_000
	e := newConsultEnv(t, chat.ConsultConfig{MaxPerConsultant: n})
	e.user("lawyer")
	e.user("cust")
	sub := e.core.Subscribe([]chat.Filter{{Topic: chat.TopicConsult, Type: "time_up"}}, 2*n)
	defer sub.Close()
	ctx := context.Background()
	ids := make([]chat.SessionID, n)
	deadlines := make(map[chat.SessionID]int64, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				v, err := e.core.CreateConsultation(ctx, e.app.ID, chat.ConsultInput{Consultant: "lawyer", Customer: "cust",
					Seconds: int64(1 + i%1800), Start: chat.StartNow})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ids[i] = v.ID
				deadlines[v.ID] = v.Deadline
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	seen := make(map[chat.SessionID]int, n)
	step := int64(0)
	for len(seen) < n && step < 5000 {
		step++
		e.clock.add(time.Duration(300+step*37%600) * time.Millisecond)
		e.core.ConsultTick(ctx)
	drain:
		for {
			select {
			case ev := <-sub.C:
				seen[ev.Session]++
				late := ev.Time - deadlines[ev.Session]
				if late < 0 || late >= 1000 {
					t.Fatalf("consultation %d ended %d ms after its deadline", ev.Session, late)
				}
			default:
				break drain
			}
		}
	}
	if len(seen) != n {
		t.Fatalf("%d of %d ended", len(seen), n)
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Fatalf("consultation %d ended %d times", id, seen[id])
		}
	}
	// Exactly one billing record each.
	var all int
	q := chat.ConsultRecordQuery{Consultant: "lawyer", Limit: chat.MaxPage}
	got := make(map[chat.SessionID]bool, n)
	for {
		p, err := e.core.ConsultRecords(ctx, e.app.ID, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Records {
			if got[r.ID] || r.EndedAt != deadlines[r.ID] || r.ActiveSeconds != r.BoughtSeconds {
				t.Fatalf("record %+v (deadline %d, duplicate %v)", r, deadlines[r.ID], got[r.ID])
			}
			got[r.ID] = true
		}
		all += len(p.Records)
		if p.Next == "" {
			break
		}
		q.After = p.Next
	}
	if all != n {
		t.Fatalf("%d records for %d consultations", all, n)
	}
}

// A time up whose commit fails is not lost: the consultation stays as the
// store has it (sends still refused: its time is up), the clock tries
// again a second later, and the end is then stored at the deadline with
// one record.
func TestConsultEndRetriedAfterAFailedCommit(t *testing.T) {
	st := &failingStore{Store: memstore.New()}
	var logs logLines
	clk := newFakeClock()
	cfg := clk.cfg(chat.ConsultConfig{})
	cfg.LogError = logs.log
	e := &consultEnv{env: newEnvOn(t, cfg, st), clock: clk}
	tl := e.user("lawyer")
	e.user("cust")
	law := e.login(tl)
	v := e.create(chat.ConsultInput{Consultant: "lawyer", Customer: "cust", Seconds: 60, Start: chat.StartNow})
	st.failApply.Store(true)
	e.tick(60 * time.Second)
	if got := logs.take(); len(got) == 0 || !strings.Contains(strings.Join(got, "\n"), "time_up") {
		t.Fatalf("logged %q", got)
	}
	if s := e.state(v.ID); s.State != chat.ConsultActive || s.RemainingSeconds != 0 {
		t.Fatalf("after the failed commit: %+v", s)
	}
	frameErr(t, law.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"x"}`, v.ID)),
		chat.CodeForbidden, "has ended")
	st.failApply.Store(false)
	e.tick(time.Second)
	r, err := e.core.ConsultRecord(context.Background(), e.app.ID, v.ID)
	if err != nil || r.EndReason != chat.EndTimeUp || r.EndedAt != v.Deadline || r.ActiveSeconds != 60 {
		t.Fatalf("record %+v %v", r, err)
	}
}
