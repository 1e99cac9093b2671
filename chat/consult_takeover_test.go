package chat_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"chatd/chat"
	"chatd/chat/memstore"
)

// takeoverEnv is two nodes on one shared store and one replaced clock:
// node a owns the consultations first; the test "kills" it (Run stopped,
// without the drain's checkpoint) and node b takes them over, as the next
// holder of the "domains" lease would (consultTakeOver).
type takeoverEnv struct {
	t      *testing.T
	clock  *fakeClock
	shared *memstore.Shared
	cfg    chat.Config
	a      *env
}

func newTakeoverEnv(t *testing.T, cc chat.ConsultConfig) *takeoverEnv {
	clk := newFakeClock()
	cfg := clk.cfg(cc)
	cfg.SharedStore = true
	shared := memstore.NewShared()
	a := newEnvOn(t, cfg, shared)
	a.user("lawyer")
	a.user("cust")
	return &takeoverEnv{t: t, clock: clk, shared: shared, cfg: cfg, a: a}
}

// node starts another node on the shared store (it loads the open
// consultations at start, by the restart rule, as every node does today).
func (te *takeoverEnv) node() *consultEnv {
	te.t.Helper()
	core, err := chat.New(te.cfg, te.shared)
	if err != nil {
		te.t.Fatal(err)
	}
	e := runEnv(te.t, core, te.shared)
	e.app = te.a.app
	return &consultEnv{env: e, clock: te.clock}
}

func (te *takeoverEnv) create(in chat.ConsultInput) *chat.ConsultView {
	te.t.Helper()
	in.Consultant, in.Customer = "lawyer", "cust"
	v, err := te.a.core.CreateConsultation(context.Background(), te.a.app.ID, in)
	if err != nil {
		te.t.Fatal(err)
	}
	return v
}

// act is a host action on node a.
func (te *takeoverEnv) act(id chat.SessionID, ch chat.ConsultChange) {
	te.t.Helper()
	if _, err := te.a.core.ConsultAct(context.Background(), te.a.app.ID, id, "", ch); err != nil {
		te.t.Fatal(err)
	}
}

// running20 is the common start: node b up, and a 60-s consultation
// created on node a and running for 20 s.
func running20(t *testing.T) (*takeoverEnv, *consultEnv, *chat.ConsultView) {
	te := newTakeoverEnv(t, chat.ConsultConfig{})
	b := te.node()
	v := te.create(chat.ConsultInput{Seconds: 60, Start: chat.StartNow, PricePerMinute: 200})
	te.clock.add(20 * time.Second)
	return te, b, v
}

func (e *consultEnv) takeOver(prev chat.LeaseInfo) {
	e.t.Helper()
	if err := e.core.ConsultTakeOverForTest(context.Background(), prev); err != nil {
		e.t.Fatal(err)
	}
}

func (e *consultEnv) record(id chat.SessionID) chat.ConsultRecord {
	e.t.Helper()
	r, err := e.core.ConsultRecord(context.Background(), e.app.ID, id)
	if err != nil {
		e.t.Fatalf("record of %d: %v", id, err)
	}
	return r
}

const sec = int64(1000)

// The owner is killed 20 s into a 60-s consultation; its lease runs out 8 s
// later and node b takes over 2 s after that: the 28 s the cluster served
// are charged, the 2 s without an owner are not, and the consultation
// ends on b at its new deadline, billed exactly the 60 s bought.
func TestConsultTakeOverAfterTheOwnerDied(t *testing.T) {
	te, b, v := running20(t)
	t0 := v.StartedAt
	te.a.stop() // killed: no checkpoint since the start
	te.clock.add(10 * time.Second)
	b.takeOver(chat.LeaseInfo{Holder: "a/x", Left: -2 * time.Second})

	got := b.state(v.ID)
	// 60 − 20 (a ran it) − (10 − 2) (the cluster served on until the lease ran out)
	if got.State != chat.ConsultActive || got.RemainingSeconds != 32 || got.Deadline != t0+62*sec || got.UsedMS != 28*sec {
		t.Fatalf("after the takeover: %+v", got)
	}
	if n := b.core.ConsultScheduledForTest(); n != 1 {
		t.Fatalf("%d consultations on b's clock, want 1", n)
	}
	te.clock.set(got.Deadline - 1)
	b.core.ConsultTick(context.Background())
	if s := b.state(v.ID); s.State != chat.ConsultActive || s.RemainingSeconds != 1 {
		t.Fatalf("1 ms before the deadline: %+v", s)
	}
	te.clock.set(got.Deadline + 300) // the clock wakes late: charged to the deadline anyway
	b.core.ConsultTick(context.Background())
	r := b.record(v.ID)
	if r.State != chat.ConsultEnded || r.EndReason != chat.EndTimeUp || r.EndedAt != got.Deadline ||
		r.ActiveSeconds != 60 || r.BilledSeconds != 60 || r.Amount != 200 || r.PausedSeconds != 0 {
		t.Fatalf("record %+v (deadline %d)", r, got.Deadline)
	}
}

// The deadline passed while nobody owned the consultations: the takeover
// ends it at once, and its record says it ended at its deadline, billed
// exactly the bought and free time.
func TestConsultTakeOverDeadlinePassed(t *testing.T) {
	te := newTakeoverEnv(t, chat.ConsultConfig{})
	b := te.node()
	free := int64(10)
	v := te.create(chat.ConsultInput{Seconds: 50, FreeSeconds: &free, Start: chat.StartNow, PricePerMinute: 60, Ref: "o-1"})
	sub := b.core.Subscribe([]chat.Filter{{Topic: chat.TopicConsult}}, 16)
	defer sub.Close()
	te.clock.add(20 * time.Second)
	te.a.stop()
	te.clock.add(50 * time.Second) // the lease ran out 5 s ago: served until +65 s, deadline +60 s
	b.takeOver(chat.LeaseInfo{Holder: "a/x", Left: -5 * time.Second})

	// Ended and durable when the takeover returns.
	r := b.record(v.ID)
	if r.State != chat.ConsultEnded || r.EndReason != chat.EndTimeUp || r.EndedAt != v.Deadline ||
		r.ActiveSeconds != 60 || r.FreeUsed != 10 || r.BilledSeconds != 50 || r.Amount != 60 || r.Ref != "o-1" {
		t.Fatalf("record %+v (deadline %d)", r, v.Deadline)
	}
	if s := b.state(v.ID); s.State != chat.ConsultEnded || s.EndedAt != v.Deadline || s.RemainingSeconds != 0 {
		t.Fatalf("view %+v", s)
	}
	select {
	case ev := <-sub.C:
		if ev.Type != "time_up" || ev.Session != v.ID || ev.Consult == nil || ev.Consult.Record == nil {
			t.Fatalf("event %+v", ev)
		}
	default:
		t.Fatal("no time_up event on the stream")
	}
	if n := b.core.ConsultScheduledForTest(); n != 0 {
		t.Fatalf("%d consultations still on b's clock", n)
	}
	// The members cannot send any more.
	frameErr(t, b.login(b.user("cust")).do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"x"}`, v.ID)),
		chat.CodeForbidden, "has ended")
}

// Nobody held the lease (the first owner, or the previous one stopped
// gracefully and released it): the restart rule. After a graceful stop
// the consultation has exactly the time it had left at the stop; the gap
// until the takeover is in the customer's favour.
func TestConsultTakeOverAfterARelease(t *testing.T) {
	te, b, v := running20(t)
	if err := te.a.core.Drain(context.Background()); err != nil { // the checkpoint: 40 s left
		t.Fatal(err)
	}
	te.a.stop()
	te.clock.add(3 * time.Second)
	b.takeOver(chat.LeaseInfo{})
	now := te.clock.ms.Load()
	if got := b.state(v.ID); got.State != chat.ConsultActive || got.RemainingSeconds != 40 || got.Deadline != now+40*sec {
		t.Fatalf("after the takeover: %+v", got)
	}
	te.clock.set(now + 40*sec)
	b.core.ConsultTick(context.Background())
	if r := b.record(v.ID); r.EndReason != chat.EndTimeUp || r.EndedAt != now+40*sec || r.ActiveSeconds != 60 {
		t.Fatalf("record %+v", r)
	}
}

// A crash with no lease to read (a single node, or a cluster's first
// owner, Holder empty): the restart rule charges nothing since the last
// saved change.
func TestConsultTakeOverNoHolderAfterACrash(t *testing.T) {
	te, b, v := running20(t)
	te.act(v.ID, chat.ConsultChange{Op: chat.ConsultExtend, Seconds: 30}) // saved: 20 s used of 90
	te.clock.add(15 * time.Second)
	te.a.stop()
	te.clock.add(time.Hour)
	b.takeOver(chat.LeaseInfo{})
	if got := b.state(v.ID); got.RemainingSeconds != 70 || got.Deadline != te.clock.ms.Load()+70*sec {
		t.Fatalf("after the takeover: %+v", got)
	}
}

// A paused consultation stays paused across a takeover and is not charged;
// the time it was paused while the cluster served counts as paused.
func TestConsultTakeOverPaused(t *testing.T) {
	te, b, v := running20(t)
	te.act(v.ID, chat.ConsultChange{Op: chat.ConsultPause})
	te.clock.add(10 * time.Second)
	te.a.stop()
	te.clock.add(10 * time.Second)
	b.takeOver(chat.LeaseInfo{Holder: "a/x", Left: -2 * time.Second})
	got := b.state(v.ID)
	if got.State != chat.ConsultPaused || got.RemainingSeconds != 40 || got.PausedMS != 18*sec || got.Deadline != 0 {
		t.Fatalf("after the takeover: %+v", got)
	}
	te.clock.add(5 * time.Second)
	if _, err := b.host(v.ID, chat.ConsultChange{Op: chat.ConsultResume}); err != nil {
		t.Fatal(err)
	}
	te.clock.add(7 * time.Second)
	if _, err := b.host(v.ID, chat.ConsultChange{Op: chat.ConsultEnd}); err != nil {
		t.Fatal(err)
	}
	if r := b.record(v.ID); r.ActiveSeconds != 27 || r.PausedSeconds != 23 || r.EndReason != chat.EndByHost {
		t.Fatalf("record %+v", r)
	}
}

// A lease still live when read (it should not happen: the caller took it)
// counts as one that ran out at the takeover.
func TestConsultTakeOverLiveLease(t *testing.T) {
	te, b, v := running20(t)
	te.clock.add(5 * time.Second)
	te.a.stop()
	b.takeOver(chat.LeaseInfo{Holder: "a/x", Left: 3 * time.Second})
	if got := b.state(v.ID); got.RemainingSeconds != 35 || got.Deadline != v.Deadline {
		t.Fatalf("after the takeover: %+v", got)
	}
}

// A node that loaded the consultations at its start (the restart rule)
// and takes them over later drops what it had: the consultation the old
// owner ended is gone from its memory and from the consultant's limit, the
// running one follows the wall clock, the pending one keeps its expiry,
// and each is on the clock once.
func TestConsultTakeOverResetsWhatTheNodeHad(t *testing.T) {
	te := newTakeoverEnv(t, chat.ConsultConfig{MaxPerConsultant: 3})
	ctx := context.Background()
	t0 := te.clock.ms.Load()
	ended := te.create(chat.ConsultInput{Seconds: 60, Start: chat.StartNow})
	running := te.create(chat.ConsultInput{Seconds: 60, Start: chat.StartNow})
	pending := te.create(chat.ConsultInput{Seconds: 60, ExpiresIn: 90})
	b := te.node() // loads all three
	if n := b.core.ConsultScheduledForTest(); n != 3 {
		t.Fatalf("b's clock has %d at its start", n)
	}
	te.clock.add(10 * time.Second)
	te.act(ended.ID, chat.ConsultChange{Op: chat.ConsultEnd})
	te.clock.add(10 * time.Second)
	te.a.stop()
	te.clock.add(5 * time.Second)
	b.takeOver(chat.LeaseInfo{Holder: "a/x", Left: -time.Second})

	if n := b.core.ConsultScheduledForTest(); n != 2 {
		t.Fatalf("b's clock has %d after the takeover, want 2", n)
	}
	if s := b.state(ended.ID); s.State != chat.ConsultEnded || s.EndedAt != t0+10*sec {
		t.Fatalf("ended on a: %+v", s)
	}
	if s := b.state(running.ID); s.RemainingSeconds != 36 || s.Deadline != t0+61*sec {
		t.Fatalf("running: %+v", s)
	}
	if s := b.state(pending.ID); s.State != chat.ConsultPending || s.ExpiresAt != t0+90*sec {
		t.Fatalf("pending: %+v", s)
	}
	// The limit counts the two open ones: one more may be created.
	if _, err := b.core.CreateConsultation(ctx, b.app.ID, chat.ConsultInput{Consultant: "lawyer", Customer: "cust", Seconds: 5}); err != nil {
		t.Fatal(err)
	}
	_, err := b.core.CreateConsultation(ctx, b.app.ID, chat.ConsultInput{Consultant: "lawyer", Customer: "cust", Seconds: 5})
	errCode(t, err, chat.CodeConflict, "open consultations")

	te.clock.set(t0 + 90*sec)
	b.core.ConsultTick(ctx)
	if r := b.record(running.ID); r.EndedAt != t0+61*sec || r.ActiveSeconds != 60 {
		t.Fatalf("running: %+v", r)
	}
	if r := b.record(pending.ID); r.State != chat.ConsultExpired || r.EndedAt != t0+90*sec {
		t.Fatalf("pending: %+v", r)
	}
}

// A graceful stop whose consultation ran out but was not ended yet by the
// clock ends it in the stop, at its deadline: a restart does not give it
// its time again.
func TestConsultDrainEndsWhatRanOut(t *testing.T) {
	clk := newFakeClock()
	st := memstore.New()
	e := &consultEnv{env: newEnvOn(t, clk.cfg(chat.ConsultConfig{}), st), clock: clk}
	e.user("lawyer")
	e.user("cust")
	v := e.create(chat.ConsultInput{Consultant: "lawyer", Customer: "cust", Seconds: 60, Start: chat.StartNow})
	e.clock.add(61 * time.Second) // the clock has not looked
	if err := e.core.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.stop()
	r, err := e.core.ConsultRecord(context.Background(), e.app.ID, v.ID)
	if err != nil || r.EndReason != chat.EndTimeUp || r.EndedAt != v.Deadline || r.ActiveSeconds != 60 {
		t.Fatalf("record %+v %v", r, err)
	}
	c2, err := chat.New(clk.cfg(chat.ConsultConfig{}), st)
	if err != nil {
		t.Fatal(err)
	}
	e2 := runEnv(t, c2, st)
	e2.app = e.app
	got, err := c2.Consultation(context.Background(), e.app.ID, v.ID)
	if err != nil || got.State != chat.ConsultEnded {
		t.Fatalf("after restart: %+v %v", got, err)
	}
}
