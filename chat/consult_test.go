package chat

import (
	"errors"
	"math/rand"
	"testing"
)

const t0 = int64(1_800_000_000_000) // a fixed unix-ms origin

func newConsult(rule StartRule, bought, free int64) *Consultation {
	k := &Consultation{ID: 7, App: "a", Consultant: "lawyer", Customer: "cust", State: ConsultPending,
		Start: rule, BoughtSec: bought, FreeSec: free, PricePerMinute: 200, Currency: "CNY",
		Rounding: RoundPerMinute, CreatedAt: t0, ExpiresAt: t0 + 600_000}
	if rule == StartNow {
		k.start(t0)
	}
	return k
}

func must(t *testing.T, k *Consultation, ch ConsultChange, now int64) {
	t.Helper()
	if err := k.Apply(ch, now); err != nil {
		t.Fatalf("%s by %s at +%d ms: %v", ch.Op, ch.Actor, now-t0, err)
	}
}

func wantCode(t *testing.T, err error, code Code) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("got %v, want code %s", err, code)
	}
}

func TestConsultStartRules(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rule  StartRule
		start ConsultChange
		// who may send before the start
		consultantMaySend bool
	}{
		{name: "accept", rule: StartAccept, start: ConsultChange{Op: ConsultAccept, Actor: ActorConsultant}},
		{name: "first_reply", rule: StartFirstReply, start: ConsultChange{Op: ConsultFirstReply, Actor: ActorConsultant}, consultantMaySend: true},
		{name: "first_reply accepted", rule: StartFirstReply, start: ConsultChange{Op: ConsultAccept, Actor: ActorConsultant}, consultantMaySend: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newConsult(tc.rule, 900, 0)
			if err := k.MaySend("cust", t0); err != nil {
				t.Fatalf("customer's first question refused: %v", err)
			}
			err := k.MaySend("lawyer", t0)
			if tc.consultantMaySend != (err == nil) {
				t.Fatalf("consultant send before the start: %v", err)
			}
			if !tc.consultantMaySend {
				wantCode(t, err, CodeForbidden)
			}
			// Time spent pending is not charged.
			must(t, k, tc.start, t0+30_000)
			if k.State != ConsultActive || k.StartedAt != t0+30_000 {
				t.Fatalf("state %s started %d", k.State, k.StartedAt)
			}
			if r := k.RemainingAt(t0 + 30_000); r != 900_000 {
				t.Fatalf("remaining at start %d", r)
			}
			if d := k.Deadline(); d != t0+30_000+900_000 {
				t.Fatalf("deadline +%d", d-t0)
			}
		})
	}
	t.Run("now", func(t *testing.T) {
		k := newConsult(StartNow, 60, 0)
		if k.State != ConsultActive || k.Deadline() != t0+60_000 {
			t.Fatalf("state %s deadline +%d", k.State, k.Deadline()-t0)
		}
		wantCode(t, k.Apply(ConsultChange{Op: ConsultAccept, Actor: ActorConsultant}, t0+1), CodeConflict)
	})
}

func TestConsultDeclineCancelExpire(t *testing.T) {
	k := newConsult(StartAccept, 900, 0)
	must(t, k, ConsultChange{Op: ConsultDecline, Actor: ActorConsultant}, t0+5000)
	if k.State != ConsultCancelled || k.EndReason != EndDeclined || k.EndedAt != t0+5000 {
		t.Fatalf("declined: %+v", k)
	}
	if r := k.Bill(); r.BilledSeconds != 0 || r.Amount != 0 || r.EndReason != EndDeclined {
		t.Fatalf("declined bill %+v", r)
	}
	wantCode(t, k.MaySend("cust", t0+6000), CodeForbidden)

	k = newConsult(StartAccept, 900, 0)
	wantCode(t, k.Apply(ConsultChange{Op: ConsultCancel, Actor: ActorCustomer}, t0), CodeForbidden)
	must(t, k, ConsultChange{Op: ConsultCancel, Actor: ActorHost}, t0+1000)
	if k.State != ConsultCancelled || k.EndReason != EndCancelled {
		t.Fatalf("cancelled: %+v", k)
	}

	k = newConsult(StartAccept, 900, 0)
	wantCode(t, k.Apply(ConsultChange{Op: ConsultExpire, Actor: ActorServer}, k.ExpiresAt-1), CodeConflict)
	exp := k.ExpiresAt
	must(t, k, ConsultChange{Op: ConsultExpire, Actor: ActorServer}, exp+400) // the timer fired late
	if k.State != ConsultExpired || k.EndReason != EndExpired || k.EndedAt != exp {
		t.Fatalf("expired: %+v", k)
	}
	// A final state takes no more changes.
	wantCode(t, k.Apply(ConsultChange{Op: ConsultAccept, Actor: ActorConsultant}, exp+500), CodeConflict)
}

func TestConsultPauseResumeArithmetic(t *testing.T) {
	k := newConsult(StartAccept, 600, 0)
	must(t, k, ConsultChange{Op: ConsultAccept, Actor: ActorConsultant}, t0)
	must(t, k, ConsultChange{Op: ConsultPause, Actor: ActorConsultant}, t0+100_000)
	if k.RemainingAt(t0+400_000) != 500_000 {
		t.Fatalf("paused time consumed: remaining %d", k.RemainingAt(t0+400_000))
	}
	if k.Deadline() != 0 {
		t.Fatal("a paused consultation has a deadline")
	}
	wantCode(t, k.Apply(ConsultChange{Op: ConsultPause, Actor: ActorHost}, t0+200_000), CodeConflict)
	wantCode(t, k.Apply(ConsultChange{Op: ConsultResume, Actor: ActorCustomer}, t0+200_000), CodeForbidden)
	must(t, k, ConsultChange{Op: ConsultResume, Actor: ActorHost}, t0+400_000)
	if got, want := k.Deadline(), t0+400_000+500_000; got != want {
		t.Fatalf("deadline after resume +%d, want +%d", got-t0, want-t0)
	}
	must(t, k, ConsultChange{Op: ConsultPause, Actor: ActorHost}, t0+450_000)
	must(t, k, ConsultChange{Op: ConsultResume, Actor: ActorConsultant}, t0+460_000)
	if k.UsedMS != 150_000 || k.PausedMS != 310_000 {
		t.Fatalf("used %d paused %d", k.UsedMS, k.PausedMS)
	}
	must(t, k, ConsultChange{Op: ConsultTimeUp, Actor: ActorServer}, k.Deadline())
	r := k.Bill()
	if r.ActiveSeconds != 600 || r.PausedSeconds != 310 || r.EndedAt != t0+460_000+450_000 {
		t.Fatalf("bill %+v", r)
	}
}

func TestConsultExtend(t *testing.T) {
	t.Run("active", func(t *testing.T) {
		k := newConsult(StartAccept, 900, 0)
		must(t, k, ConsultChange{Op: ConsultAccept, Actor: ActorConsultant}, t0)
		must(t, k, ConsultChange{Op: ConsultExtend, Actor: ActorHost, Seconds: 300, Ref: "order-2"}, t0+600_000)
		if k.Deadline() != t0+1_200_000 || k.RemainingAt(t0+600_000) != 600_000 {
			t.Fatalf("deadline +%d", k.Deadline()-t0)
		}
		if len(k.Extensions) != 1 || k.Extensions[0] != (Extension{Seconds: 300, At: t0 + 600_000, Ref: "order-2"}) {
			t.Fatalf("extensions %+v", k.Extensions)
		}
	})
	t.Run("paused", func(t *testing.T) {
		k := newConsult(StartAccept, 900, 0)
		must(t, k, ConsultChange{Op: ConsultAccept, Actor: ActorConsultant}, t0)
		must(t, k, ConsultChange{Op: ConsultPause, Actor: ActorConsultant}, t0+800_000)
		must(t, k, ConsultChange{Op: ConsultExtend, Actor: ActorHost, Seconds: 300}, t0+900_000)
		if k.State != ConsultPaused || k.RemainingAt(t0+1_000_000) != 400_000 {
			t.Fatalf("state %s remaining %d", k.State, k.RemainingAt(t0+1_000_000))
		}
		must(t, k, ConsultChange{Op: ConsultResume, Actor: ActorConsultant}, t0+1_000_000)
		if k.Deadline() != t0+1_400_000 {
			t.Fatalf("deadline +%d", k.Deadline()-t0)
		}
	})
	t.Run("pending", func(t *testing.T) {
		k := newConsult(StartAccept, 900, 0)
		must(t, k, ConsultChange{Op: ConsultExtend, Actor: ActorHost, Seconds: 100}, t0+5_000)
		must(t, k, ConsultChange{Op: ConsultAccept, Actor: ActorConsultant}, t0+10_000)
		if k.Deadline() != t0+10_000+1_000_000 || k.UsedMS != 0 {
			t.Fatalf("deadline +%d used %d", k.Deadline()-t0, k.UsedMS)
		}
	})
	t.Run("bad", func(t *testing.T) {
		k := newConsult(StartAccept, 900, 0)
		wantCode(t, k.Apply(ConsultChange{Op: ConsultExtend, Actor: ActorHost, Seconds: 0}, t0), CodeBadRequest)
		wantCode(t, k.Apply(ConsultChange{Op: ConsultExtend, Actor: ActorHost, Seconds: -5}, t0), CodeBadRequest)
		wantCode(t, k.Apply(ConsultChange{Op: ConsultExtend, Actor: ActorHost, Seconds: MaxConsultSeconds}, t0), CodeBadRequest)
		wantCode(t, k.Apply(ConsultChange{Op: ConsultExtend, Actor: ActorCustomer, Seconds: 60}, t0), CodeForbidden)
		wantCode(t, k.Apply(ConsultChange{Op: ConsultExtend, Actor: ActorConsultant, Seconds: 60}, t0), CodeForbidden)
	})
	t.Run("after time up", func(t *testing.T) {
		k := newConsult(StartAccept, 60, 0)
		must(t, k, ConsultChange{Op: ConsultAccept, Actor: ActorConsultant}, t0)
		must(t, k, ConsultChange{Op: ConsultTimeUp, Actor: ActorServer}, t0+60_000)
		wantCode(t, k.Apply(ConsultChange{Op: ConsultExtend, Actor: ActorHost, Seconds: 60}, t0+61_000), CodeConflict)
	})
}

func TestConsultEarlyEnd(t *testing.T) {
	for _, tc := range []struct {
		name  string
		actor ConsultActor
		want  EndReason
	}{
		{name: "consultant", actor: ActorConsultant, want: EndByConsultant},
		{name: "customer", actor: ActorCustomer, want: EndByCustomer},
		{name: "host", actor: ActorHost, want: EndByHost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newConsult(StartAccept, 900, 0)
			wantCode(t, k.Apply(ConsultChange{Op: ConsultEnd, Actor: tc.actor}, t0), CodeConflict) // not started
			must(t, k, ConsultChange{Op: ConsultAccept, Actor: ActorConsultant}, t0)
			must(t, k, ConsultChange{Op: ConsultEnd, Actor: tc.actor}, t0+125_400)
			r := k.Bill()
			if r.State != ConsultEnded || r.EndReason != tc.want || r.ActiveSeconds != 126 || r.EndedAt != t0+125_400 {
				t.Fatalf("bill %+v", r)
			}
			wantCode(t, k.MaySend("cust", t0+125_401), CodeForbidden)
			wantCode(t, k.Apply(ConsultChange{Op: ConsultEnd, Actor: tc.actor}, t0+125_500), CodeConflict)
		})
	}
}

func TestConsultTimeUpBoundary(t *testing.T) {
	k := newConsult(StartAccept, 900, 0)
	must(t, k, ConsultChange{Op: ConsultAccept, Actor: ActorConsultant}, t0)
	dl := k.Deadline()
	if err := k.MaySend("lawyer", dl-1); err != nil {
		t.Fatalf("send 1 ms before the deadline: %v", err)
	}
	wantCode(t, k.Apply(ConsultChange{Op: ConsultTimeUp, Actor: ActorServer}, dl-1), CodeConflict)
	err := k.MaySend("cust", dl)
	wantCode(t, err, CodeForbidden)
	if err.(*Error).Message != "the consultation has ended" {
		t.Fatalf("message %q", err.(*Error).Message)
	}
	must(t, k, ConsultChange{Op: ConsultTimeUp, Actor: ActorServer}, dl)
	r := k.Bill()
	if r.EndReason != EndTimeUp || r.ActiveSeconds != 900 || r.BilledSeconds != 900 || r.EndedAt != dl || r.Amount != 15*200 {
		t.Fatalf("bill %+v", r)
	}
	// A customer's end that arrives after the deadline but before the timer
	// fired is a time up, charged to the deadline only.
	k = newConsult(StartAccept, 900, 0)
	must(t, k, ConsultChange{Op: ConsultAccept, Actor: ActorConsultant}, t0)
	must(t, k, ConsultChange{Op: ConsultEnd, Actor: ActorCustomer}, dl+700)
	if k.EndReason != EndTimeUp || k.EndedAt != dl || k.UsedMS != 900_000 {
		t.Fatalf("late end %+v", k)
	}
	k = newConsult(StartAccept, 900, 0)
	must(t, k, ConsultChange{Op: ConsultAccept, Actor: ActorConsultant}, t0)
	wantCode(t, k.Apply(ConsultChange{Op: ConsultPause, Actor: ActorConsultant}, dl), CodeConflict)
	if k.State != ConsultEnded || k.EndReason != EndTimeUp {
		t.Fatalf("pause at the deadline left %s", k.State)
	}
}

func TestConsultFreeAllowanceAndRounding(t *testing.T) {
	k := newConsult(StartAccept, 600, 120) // 10 paid minutes + 2 free
	must(t, k, ConsultChange{Op: ConsultAccept, Actor: ActorConsultant}, t0)
	if k.Deadline() != t0+720_000 {
		t.Fatalf("free time not added: deadline +%d", k.Deadline()-t0)
	}
	must(t, k, ConsultChange{Op: ConsultEnd, Actor: ActorCustomer}, t0+100_000)
	if r := k.Bill(); r.FreeUsed != 100 || r.BilledSeconds != 0 || r.Amount != 0 {
		t.Fatalf("inside the free allowance: %+v", r)
	}
	for _, tc := range []struct {
		name     string
		rounding Rounding
		usedMS   int64
		free     int64
		billed   int64
		amount   int64
	}{
		{name: "minute: 1 s is a started minute", rounding: RoundPerMinute, usedMS: 121_000, free: 120, billed: 1, amount: 200},
		{name: "minute: exactly 3 minutes", rounding: RoundPerMinute, usedMS: 300_000, free: 120, billed: 180, amount: 600},
		{name: "minute: 3 min 1 ms", rounding: RoundPerMinute, usedMS: 300_001, free: 120, billed: 181, amount: 800},
		{name: "second: 1 s", rounding: RoundPerSecond, usedMS: 121_000, free: 120, billed: 1, amount: 4}, // 200/60 = 3.33 → 4
		{name: "second: 90 s", rounding: RoundPerSecond, usedMS: 210_000, free: 120, billed: 90, amount: 300},
		{name: "second: 91 s", rounding: RoundPerSecond, usedMS: 211_000, free: 120, billed: 91, amount: 304}, // 303.33 → 304
		{name: "second: a started second counts", rounding: RoundPerSecond, usedMS: 210_001, free: 120, billed: 91, amount: 304},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newConsult(StartAccept, 600, tc.free)
			k.Rounding = tc.rounding
			must(t, k, ConsultChange{Op: ConsultAccept, Actor: ActorConsultant}, t0)
			must(t, k, ConsultChange{Op: ConsultEnd, Actor: ActorHost}, t0+tc.usedMS)
			r := k.Bill()
			if r.FreeUsed != tc.free || r.BilledSeconds != tc.billed || r.Amount != tc.amount ||
				r.FreeUsed+r.BilledSeconds != r.ActiveSeconds {
				t.Fatalf("bill %+v", r)
			}
		})
	}
}

func TestConsultWrongActorAndState(t *testing.T) {
	k := newConsult(StartAccept, 900, 0)
	for _, ch := range []ConsultChange{
		{Op: ConsultAccept, Actor: ActorCustomer},
		{Op: ConsultAccept, Actor: ActorHost},
		{Op: ConsultDecline, Actor: ActorCustomer},
		{Op: ConsultPause, Actor: ActorCustomer},
		{Op: ConsultTimeUp, Actor: ActorHost},
		{Op: ConsultExpire, Actor: ActorConsultant},
		{Op: ConsultAccept, Actor: 0}, // an outsider
	} {
		wantCode(t, k.Apply(ch, t0), CodeForbidden)
	}
	for _, ch := range []ConsultChange{
		{Op: ConsultPause, Actor: ActorConsultant},
		{Op: ConsultResume, Actor: ActorConsultant},
		{Op: ConsultEnd, Actor: ActorHost},
	} {
		wantCode(t, k.Apply(ch, t0), CodeConflict)
	}
	must(t, k, ConsultChange{Op: ConsultAccept, Actor: ActorConsultant}, t0)
	for _, ch := range []ConsultChange{
		{Op: ConsultAccept, Actor: ActorConsultant},
		{Op: ConsultDecline, Actor: ActorConsultant},
		{Op: ConsultCancel, Actor: ActorHost},
		{Op: ConsultResume, Actor: ActorHost},
	} {
		wantCode(t, k.Apply(ch, t0+1), CodeConflict)
	}
	wantCode(t, k.Apply(ConsultChange{Op: 99, Actor: ActorHost}, t0), CodeBadRequest)
	if k.ActorOf("someone") != 0 || k.ActorOf("lawyer") != ActorConsultant || k.ActorOf("cust") != ActorCustomer {
		t.Fatal("ActorOf")
	}
}

// The restart rule: an active consultation resumes with the time it had
// left at its last saved change; the time after it, downtime included, is
// not charged.
func TestConsultRestartRule(t *testing.T) {
	k := newConsult(StartAccept, 900, 0)
	must(t, k, ConsultChange{Op: ConsultAccept, Actor: ActorConsultant}, t0)
	must(t, k, ConsultChange{Op: ConsultPause, Actor: ActorConsultant}, t0+100_000)
	must(t, k, ConsultChange{Op: ConsultResume, Actor: ActorConsultant}, t0+120_000) // last saved: 800 s left
	saved := *k
	// The server stops at +300 s and comes back at +3600 s.
	saved.Resume(t0 + 3_600_000)
	if r := saved.RemainingAt(t0 + 3_600_000); r != 800_000 {
		t.Fatalf("remaining after restart %d, want 800000", r)
	}
	if saved.Deadline() != t0+3_600_000+800_000 {
		t.Fatalf("deadline +%d", saved.Deadline()-t0)
	}
	must(t, &saved, ConsultChange{Op: ConsultEnd, Actor: ActorCustomer}, t0+3_650_000)
	r := saved.Bill()
	if r.ActiveSeconds != 150 || r.PausedSeconds != 20 {
		t.Fatalf("downtime charged or counted: %+v", r)
	}
}

func TestConsultTimersHeap(t *testing.T) {
	tm := newConsultTimers()
	rng := rand.New(rand.NewSource(1))
	want := map[SessionID]int64{}
	for i := 1; i <= 2000; i++ {
		at := 1 + rng.Int63n(10_000)
		tm.set(SessionID(i), at)
		want[SessionID(i)] = at
	}
	for i := 1; i <= 2000; i += 3 { // reschedule some, remove others
		at := 1 + rng.Int63n(10_000)
		tm.set(SessionID(i), at)
		want[SessionID(i)] = at
	}
	for i := 2; i <= 2000; i += 7 {
		tm.set(SessionID(i), 0)
		delete(want, SessionID(i))
	}
	if tm.len() != len(want) {
		t.Fatalf("len %d want %d", tm.len(), len(want))
	}
	var ids []SessionID
	last := int64(0)
	for now := int64(0); now <= 10_000; now += 97 {
		ids = tm.due(now, ids[:0])
		for _, id := range ids {
			at, ok := want[id]
			if !ok || at > now || at < last {
				t.Fatalf("id %d at %d popped at %d (previous pass %d)", id, at, now, last)
			}
			delete(want, id)
		}
		last = now - 96
	}
	ids = tm.due(1<<62, ids[:0])
	for _, id := range ids {
		delete(want, id)
	}
	if len(want) != 0 || tm.len() != 0 {
		t.Fatalf("%d entries never popped", len(want))
	}
}

// 10,000 consultations with staggered ends, driven only through the one
// heap: each ends within a second of its deadline and ends exactly once.
func TestConsultClock10kStaggered(t *testing.T) {
	const n = 10_000
	tm := newConsultTimers()
	cc := ConsultClock{}
	cc.fill()
	warn := cc.warningsMS()
	every := cc.Every.Milliseconds()
	ks := make([]*Consultation, n+1)
	lastRem := make([]int64, n+1)
	ticks := 0
	rng := rand.New(rand.NewSource(2))
	for i := 1; i <= n; i++ {
		k := newConsult(StartNow, 1+rng.Int63n(1800), 0)
		k.ID = SessionID(i)
		if i%5 == 0 { // some start later, some pause a while
			k = newConsult(StartAccept, 1+rng.Int63n(1800), 0)
			k.ID = SessionID(i)
			must(t, k, ConsultChange{Op: ConsultAccept, Actor: ActorConsultant}, t0+rng.Int63n(60_000))
		}
		ks[i] = k
		lastRem[i] = k.RemainingAt(t0)
		tm.set(k.ID, nextWake(k, t0, every, warn))
	}
	ended := make([]int, n+1)
	var ids []SessionID
	for now := t0; now <= t0+2_000_000; now += 250 + rng.Int63n(500) { // an uneven ticker, < 1 s
		ids = tm.due(now, ids[:0])
		for _, id := range ids {
			k := ks[id]
			if k.RemainingAt(now) <= 0 {
				dl := k.Deadline()
				must(t, k, ConsultChange{Op: ConsultTimeUp, Actor: ActorServer}, now)
				if now-dl >= 1000 || now < dl {
					t.Fatalf("consultation %d ended at +%d ms past its deadline", id, now-dl)
				}
				ended[id]++
				tm.set(id, 0)
				continue
			}
			rem := k.RemainingAt(now)
			if crossedTick(lastRem[id], rem, every) {
				ticks++
			}
			lastRem[id] = rem
			tm.set(id, nextWake(k, now, every, warn))
		}
	}
	wantTicks := 0
	for i := 1; i <= n; i++ {
		wantTicks += int((ks[i].BoughtSec*1000 - 1) / every)
	}
	if ticks != wantTicks {
		t.Fatalf("%d count-down events, want %d: one per 10 s of remaining time", ticks, wantTicks)
	}
	for i := 1; i <= n; i++ {
		if ended[i] != 1 || ks[i].State != ConsultEnded || ks[i].Bill().ActiveSeconds != ks[i].BoughtSec {
			t.Fatalf("consultation %d ended %d times, state %s", i, ended[i], ks[i].State)
		}
	}
}

func TestConsultNextWakeAndWarnings(t *testing.T) {
	cc := ConsultClock{}
	cc.fill()
	warn := cc.warningsMS()
	if len(warn) != 3 || warn[0] != 300_000 || warn[2] != 10_000 {
		t.Fatalf("warnings %v", warn)
	}
	k := newConsult(StartAccept, 400, 0)
	if w := nextWake(k, t0, 10_000, warn); w != k.ExpiresAt {
		t.Fatalf("pending wakes at +%d", w-t0)
	}
	must(t, k, ConsultChange{Op: ConsultAccept, Actor: ActorConsultant}, t0)
	if w := nextWake(k, t0, 10_000, warn); w != t0+10_000 {
		t.Fatalf("first tick +%d", w-t0)
	}
	// The count-down falls on whole multiples of the period of remaining time.
	if w := nextWake(k, t0+3_000, 10_000, warn); w != t0+10_000 {
		t.Fatalf("tick after a late look +%d", w-t0)
	}
	if !crossedTick(400_000, 390_000, 10_000) || crossedTick(390_000, 380_001, 10_000) || !crossedTick(390_000, 379_000, 10_000) ||
		crossedTick(5_000, 0, 10_000) {
		t.Fatal("crossedTick")
	}
	// 95 s in, with a 200 s period: the 5-minute warning (at 100 s) comes before the count (at 200 s).
	if w := nextWake(k, t0+95_000, 200_000, warn); w != t0+100_000 {
		t.Fatalf("warning wake +%d", w-t0)
	}
	if got := crossedWarning(300_500, 300_000, warn); got != 300_000 {
		t.Fatalf("crossed %d", got)
	}
	if got := crossedWarning(400_000, 5_000, warn); got != 10_000 {
		t.Fatalf("crossed several: %d", got)
	}
	if got := crossedWarning(300_000, 299_000, warn); got != 0 {
		t.Fatalf("re-warned: %d", got)
	}
	must(t, k, ConsultChange{Op: ConsultPause, Actor: ActorConsultant}, t0+1)
	if w := nextWake(k, t0+1, 10_000, warn); w != 0 {
		t.Fatal("a paused consultation is on the clock")
	}
}

// The takeover rule: the time from the saved checkpoint to the moment the
// previous owner's lease ran out is charged (or counted as paused), the
// gap until the takeover is not; a consultation whose deadline passed by
// then is left to end at once, at its deadline.
func TestConsultTakeOverRule(t *testing.T) {
	k := newConsult(StartNow, 60, 0)
	saved := *k
	saved.TakeOver(t0+28_000, t0+30_000)
	if saved.UsedMS != 28_000 || saved.Since != t0+30_000 || saved.Deadline() != t0+62_000 {
		t.Fatalf("active: %+v", saved)
	}
	saved = *k
	saved.TakeOver(t0+65_000, t0+70_000) // ran out at +60 s, while served
	if saved.UsedMS != 0 || saved.Since != t0 || saved.RemainingAt(t0+70_000) != 0 {
		t.Fatalf("ran out: %+v", saved)
	}
	must(t, &saved, ConsultChange{Op: ConsultTimeUp, Actor: ActorServer}, t0+70_000)
	if r := saved.Bill(); r.EndedAt != t0+60_000 || r.ActiveSeconds != 60 {
		t.Fatalf("bill %+v", r)
	}
	saved = *k
	saved.TakeOver(t0-5_000, t0+10_000) // saved after the lease ran out (a late commit): nothing more
	if saved.UsedMS != 0 || saved.Since != t0+10_000 {
		t.Fatalf("checkpoint after the lease: %+v", saved)
	}
	must(t, k, ConsultChange{Op: ConsultPause, Actor: ActorHost}, t0+20_000)
	p := *k
	p.TakeOver(t0+38_000, t0+40_000)
	if p.State != ConsultPaused || p.PausedMS != 18_000 || p.UsedMS != 20_000 || p.Since != t0+40_000 {
		t.Fatalf("paused: %+v", p)
	}
	pend := newConsult(StartAccept, 60, 0)
	q := *pend
	q.TakeOver(t0+1_000, t0+2_000)
	if q.State != ConsultPending || q.Since != pend.Since || q.UsedMS != 0 || q.ExpiresAt != pend.ExpiresAt {
		t.Fatalf("pending changed: %+v", q)
	}
}
