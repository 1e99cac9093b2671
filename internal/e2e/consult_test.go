package e2e_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"chatd/chat"
	"chatd/internal/teststack"
)

// A timed consultation through the whole server — the signed server API,
// WebSocket clients, the bbolt store — across a graceful restart: the
// clock resumes with the time left at the stop, the downtime is not
// charged, the end comes at the deadline with its record, and the
// history outlives it. The server's clock is replaced, so nothing sleeps.
func TestConsultationAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	var clock atomic.Int64
	clock.Store(time.Now().UnixMilli())
	opts := teststack.Options{Core: chat.Config{Now: func() time.Time { return time.UnixMilli(clock.Load()) }}}
	advance := func(d time.Duration) { clock.Add(d.Milliseconds()) }
	ctx := context.Background()

	s := teststack.Start(t, dir, opts)
	a0, err := s.Admin.CreateApp(ctx, "shop", "Shop")
	if err != nil {
		t.Fatal(err)
	}
	app := s.AppClient(a0.ID, a0.Secret)
	tl, tc := pushUser(t, app, "lawyer"), pushUser(t, app, "cust")
	var v chat.ConsultView
	if err := app.Do(ctx, "POST", "/api/v1/consultations", map[string]any{"consultant": "lawyer", "customer": "cust",
		"seconds": 600, "price_per_minute": 100, "currency": "EUR"}, &v); err != nil {
		t.Fatal(err)
	}
	law, cust := login(t, s.WSAddr, "shop", tl), login(t, s.WSAddr, "shop", tc)
	if r := cust.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"question"}`, v.ID)); !r.OK {
		t.Fatalf("first question: %+v", r.Error)
	}
	if r := law.do(fmt.Sprintf(`"action":"consult_accept","session_id":%d`, v.ID)); !r.OK {
		t.Fatalf("accept: %+v", r.Error)
	}
	cust.next("consult")
	if r := law.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"answer"}`, v.ID)); !r.OK {
		t.Fatalf("answer: %+v", r.Error)
	}
	advance(100 * time.Second)
	if err := app.Do(ctx, "POST", fmt.Sprintf("/api/v1/consultations/%d", v.ID), map[string]any{"action": "pause"}, nil); err != nil {
		t.Fatal(err)
	}
	advance(50 * time.Second)
	if r := law.do(fmt.Sprintf(`"action":"consult_resume","session_id":%d`, v.ID)); !r.OK {
		t.Fatalf("resume: %+v", r.Error)
	}
	advance(100 * time.Second) // 400 s left at the stop
	s.Stop()

	advance(time.Hour) // down
	s2 := teststack.Start(t, dir, opts)
	app = s2.AppClient(a0.ID, a0.Secret)
	if err := app.Do(ctx, "GET", fmt.Sprintf("/api/v1/consultations/%d", v.ID), nil, &v); err != nil {
		t.Fatal(err)
	}
	if v.State != chat.ConsultActive || v.RemainingSeconds != 400 || v.Deadline != clock.Load()+400_000 {
		t.Fatalf("after the restart: %+v", v)
	}
	law, cust = login(t, s2.WSAddr, "shop", tl), login(t, s2.WSAddr, "shop", tc)
	list := decode[struct {
		Sessions []chat.SessionView `json:"sessions"`
	}](t, law.do(`"action":"sessions"`))
	if len(list.Sessions) != 1 || list.Sessions[0].Consult == nil || list.Sessions[0].Consult.RemainingSeconds != 400 {
		t.Fatalf("the consultant's sessions: %+v", list)
	}
	clock.Store(v.Deadline - 1)
	s2.Core.ConsultTick(ctx)
	if r := cust.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"in time"}`, v.ID)); !r.OK {
		t.Fatalf("send 1 ms before the end: %+v", r.Error)
	}
	clock.Store(v.Deadline)
	s2.Core.ConsultTick(ctx)
	for _, c := range []*client{law, cust} {
		for {
			ev := decode[chat.ConsultEvent](t, c.next("consult"))
			if ev.Type == "state" {
				if ev.Op != "time_up" || ev.Record == nil || ev.Record.ActiveSeconds != 600 {
					t.Fatalf("end event %+v", ev)
				}
				break
			}
		}
	}
	r := cust.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"late"}`, v.ID))
	if r.OK || r.Error.Code != chat.CodeForbidden || r.Error.Message != "the consultation has ended" {
		t.Fatalf("send after the end: %s", r.raw)
	}
	h := cust.do(fmt.Sprintf(`"action":"history","session_id":%d`, v.ID))
	if !h.OK || !strings.Contains(string(h.raw), "question") || !strings.Contains(string(h.raw), "in time") {
		t.Fatalf("history after the end: %s", h.raw)
	}
	var rec chat.ConsultRecord
	if err := app.Do(ctx, "GET", fmt.Sprintf("/api/v1/consultations/%d/record", v.ID), nil, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.ActiveSeconds != 600 || rec.PausedSeconds != 50 || rec.BilledSeconds != 600 || rec.Amount != 1000 ||
		rec.EndReason != chat.EndTimeUp || rec.EndedAt != v.Deadline {
		t.Fatalf("record %+v", rec)
	}
}
