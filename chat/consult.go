package chat

// Timed consultations (docs/consultations.md): a host sells time with a
// consultant; chatd meters it to the millisecond, enforces it and writes a
// billing record when it ends. This file holds the model and the state
// machine. The machine is pure: it takes the time as an argument and
// touches neither the store nor the network, so every rule is testable
// without a server. consult_clock.go holds the clock arithmetic and the one
// timer heap; consult_billing.go the billing record.

import (
	"strconv"
)

// ConsultState is where a consultation is in its life.
type ConsultState uint8

const (
	ConsultPending   ConsultState = iota + 1 // created, the clock not started
	ConsultActive                            // the clock runs; both may send
	ConsultPaused                            // the clock stopped; both may send
	ConsultEnded                             // started, then ended (final)
	ConsultExpired                           // never started in time (final)
	ConsultCancelled                         // never started: declined or cancelled (final)
)

var consultStateNames = [...]string{"", "pending", "active", "paused", "ended", "expired", "cancelled"}

func (s ConsultState) String() string {
	if int(s) < len(consultStateNames) && s != 0 {
		return consultStateNames[s]
	}
	return "unknown"
}

// Final reports whether no action changes the state any more.
func (s ConsultState) Final() bool { return s >= ConsultEnded }

func (s ConsultState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s *ConsultState) UnmarshalText(b []byte) error {
	for i, n := range consultStateNames {
		if i > 0 && n == string(b) {
			*s = ConsultState(i)
			return nil
		}
	}
	return Errf(CodeBadRequest, "unknown consultation state "+strconv.Quote(string(b)))
}

// StartRule says when a pending consultation's clock starts.
type StartRule uint8

const (
	StartAccept     StartRule = iota + 1 // when the consultant accepts
	StartFirstReply                      // at the consultant's first message (or an accept)
	StartNow                             // at creation: it is never pending
)

var startRuleNames = [...]string{"", "accept", "first_reply", "now"}

func (r StartRule) String() string {
	if int(r) < len(startRuleNames) && r != 0 {
		return startRuleNames[r]
	}
	return "unknown"
}

func (r StartRule) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

func (r *StartRule) UnmarshalText(b []byte) error {
	for i, n := range startRuleNames {
		if i > 0 && n == string(b) {
			*r = StartRule(i)
			return nil
		}
	}
	return Errf(CodeBadRequest, `start must be "accept", "first_reply" or "now", not `+strconv.Quote(string(b)))
}

// EndReason says why a consultation reached a final state.
type EndReason uint8

const (
	EndTimeUp EndReason = iota + 1
	EndByConsultant
	EndByCustomer
	EndByHost
	EndDeclined  // the consultant declined it while pending
	EndExpired   // nobody started it before its expiry
	EndCancelled // the host cancelled it while pending
)

var endReasonNames = [...]string{"", "time_up", "ended_by_consultant", "ended_by_customer", "ended_by_host",
	"declined", "expired", "cancelled"}

func (r EndReason) String() string {
	if int(r) < len(endReasonNames) && r != 0 {
		return endReasonNames[r]
	}
	return ""
}

func (r EndReason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

func (r *EndReason) UnmarshalText(b []byte) error {
	for i, n := range endReasonNames {
		if i > 0 && n == string(b) {
			*r = EndReason(i)
			return nil
		}
	}
	if len(b) == 0 {
		*r = 0
		return nil
	}
	return Errf(CodeBadRequest, "unknown end reason "+strconv.Quote(string(b)))
}

// ConsultActor is who asks for a change.
type ConsultActor uint8

const (
	ActorConsultant ConsultActor = iota + 1
	ActorCustomer
	ActorHost   // the host backend, over the signed server API
	ActorServer // the clock: expiry and time up
)

func (a ConsultActor) String() string {
	switch a {
	case ActorConsultant:
		return "consultant"
	case ActorCustomer:
		return "customer"
	case ActorHost:
		return "host"
	case ActorServer:
		return "server"
	}
	return "unknown"
}

// ConsultOp is one change to a consultation.
type ConsultOp uint8

const (
	ConsultAccept ConsultOp = iota + 1
	ConsultDecline
	ConsultPause
	ConsultResume
	ConsultEnd
	ConsultExtend
	ConsultCancel
	ConsultFirstReply // the consultant's first message, under StartFirstReply
	ConsultExpire     // the clock: a pending consultation's expiry passed
	ConsultTimeUp     // the clock: no time left
)

var consultOpNames = [...]string{"", "accept", "decline", "pause", "resume", "end", "extend", "cancel",
	"first_reply", "expire", "time_up"}

func (o ConsultOp) String() string {
	if int(o) < len(consultOpNames) && o != 0 {
		return consultOpNames[o]
	}
	return "unknown"
}

// ParseConsultOp maps an action verb ("accept", "pause" …) to its op; the
// clock's own ops are not parsed.
func ParseConsultOp(s string) (ConsultOp, bool) {
	for i, n := range consultOpNames[:ConsultFirstReply] {
		if i > 0 && n == s {
			return ConsultOp(i), true
		}
	}
	return 0, false
}

// who may do what, by op: a bit per actor.
var consultAllowed = [...]uint8{
	ConsultAccept:     1 << ActorConsultant,
	ConsultDecline:    1 << ActorConsultant,
	ConsultPause:      1<<ActorConsultant | 1<<ActorHost,
	ConsultResume:     1<<ActorConsultant | 1<<ActorHost,
	ConsultEnd:        1<<ActorConsultant | 1<<ActorCustomer | 1<<ActorHost,
	ConsultExtend:     1 << ActorHost,
	ConsultCancel:     1 << ActorHost,
	ConsultFirstReply: 1 << ActorConsultant,
	ConsultExpire:     1 << ActorServer,
	ConsultTimeUp:     1 << ActorServer,
}

// Extension is time bought after creation.
type Extension struct {
	Seconds int64  `json:"seconds"`
	At      int64  `json:"at"` // unix ms
	Ref     string `json:"ref,omitempty"`
}

// Consultation is one consultation's durable state. Times are unix
// milliseconds; durations are milliseconds internally (the API shows
// seconds). Since is the clock's checkpoint: while active, UsedMS holds the
// time consumed up to Since and the time after it runs on; while paused,
// PausedMS holds the paused time up to Since. Every state change moves the
// checkpoint to its own time and is saved, so the saved record always says
// how much time was left at its last change (the restart rule,
// docs/consultations.md).
type Consultation struct {
	ID         SessionID    `json:"id"` // the consult session's id
	App        string       `json:"app"`
	Consultant string       `json:"consultant"`
	Customer   string       `json:"customer"`
	State      ConsultState `json:"state"`
	Start      StartRule    `json:"start"`

	BoughtSec      int64    `json:"bought_seconds"` // paid time, extensions included
	FreeSec        int64    `json:"free_seconds"`   // free allowance, consumed first
	PricePerMinute int64    `json:"price_per_minute"`
	Currency       string   `json:"currency,omitempty"`
	Rounding       Rounding `json:"rounding"`
	Ref            string   `json:"ref,omitempty"` // the host's order id, echoed

	CreatedAt int64 `json:"created_at"`
	ExpiresAt int64 `json:"expires_at,omitempty"` // pending only: expires at this time
	StartedAt int64 `json:"started_at,omitempty"`
	EndedAt   int64 `json:"ended_at,omitempty"`

	UsedMS   int64 `json:"used_ms"`
	PausedMS int64 `json:"paused_ms"`
	Since    int64 `json:"since,omitempty"`

	EndReason  EndReason   `json:"end_reason,omitempty"`
	Extensions []Extension `json:"extensions,omitempty"`
}

// TotalMS is all the time the consultation may run: free plus bought.
func (k *Consultation) TotalMS() int64 { return (k.BoughtSec + k.FreeSec) * 1000 }

// UsedAt is the active time consumed by now, never more than TotalMS.
func (k *Consultation) UsedAt(now int64) int64 {
	u := k.UsedMS
	if k.State == ConsultActive && now > k.Since {
		u += now - k.Since
	}
	return min(u, k.TotalMS())
}

// PausedAt is the paused time by now.
func (k *Consultation) PausedAt(now int64) int64 {
	p := k.PausedMS
	if k.State == ConsultPaused && now > k.Since {
		p += now - k.Since
	}
	return p
}

// RemainingAt is the time left at now.
func (k *Consultation) RemainingAt(now int64) int64 { return k.TotalMS() - k.UsedAt(now) }

// Deadline is when an active consultation's time runs out (0 when not
// active).
func (k *Consultation) Deadline() int64 {
	if k.State != ConsultActive {
		return 0
	}
	return k.Since + k.TotalMS() - k.UsedMS
}

// checkpoint folds the time since Since into UsedMS or PausedMS and moves
// Since to now. Active time never exceeds TotalMS: a late timer or action
// charges nothing past the deadline.
func (k *Consultation) checkpoint(now int64) {
	switch k.State {
	case ConsultActive:
		k.UsedMS = k.UsedAt(now)
	case ConsultPaused:
		k.PausedMS = k.PausedAt(now)
	}
	if now > k.Since {
		k.Since = now
	}
}

// ConsultChange is a request to apply to a consultation.
type ConsultChange struct {
	Op    ConsultOp
	Actor ConsultActor
	// Extend only: seconds bought (> 0) and the host's reference.
	Seconds int64
	Ref     string
}

// Apply applies ch at now, or returns why not: forbidden when the actor
// may not do it, conflict when the state does not allow it, bad_request
// for bad arguments. On success k is the new state; when an end was
// asked for after the time ran out (the timer not yet fired), the end is
// time_up, charged to the deadline.
func (k *Consultation) Apply(ch ConsultChange, now int64) error {
	if int(ch.Op) >= len(consultAllowed) || ch.Op == 0 {
		return Errf(CodeBadRequest, "unknown consultation action")
	}
	if consultAllowed[ch.Op]&(1<<ch.Actor) == 0 {
		return Errf(CodeForbidden, "the "+ch.Actor.String()+" may not "+ch.Op.String()+" a consultation")
	}
	if k.State.Final() {
		if k.State == ConsultEnded {
			return Errf(CodeConflict, "the consultation has ended")
		}
		return Errf(CodeConflict, "the consultation is "+k.State.String())
	}
	wrong := func() error {
		return Errf(CodeConflict, "cannot "+ch.Op.String()+" a consultation that is "+k.State.String())
	}
	// An active consultation whose time ran out ends now, whatever was asked.
	if k.State == ConsultActive && k.RemainingAt(now) <= 0 && ch.Op != ConsultExtend {
		k.finish(EndTimeUp, k.Deadline())
		if ch.Op == ConsultTimeUp || ch.Op == ConsultEnd {
			return nil
		}
		return Errf(CodeConflict, "the consultation has ended")
	}
	switch ch.Op {
	case ConsultAccept, ConsultFirstReply:
		if k.State != ConsultPending {
			return wrong()
		}
		k.start(now)
	case ConsultDecline:
		if k.State != ConsultPending {
			return wrong()
		}
		k.finish(EndDeclined, now)
	case ConsultCancel:
		if k.State != ConsultPending {
			return wrong()
		}
		k.finish(EndCancelled, now)
	case ConsultExpire:
		if k.State != ConsultPending {
			return wrong()
		}
		if now < k.ExpiresAt {
			return Errf(CodeConflict, "the consultation has not expired yet")
		}
		k.finish(EndExpired, k.ExpiresAt)
	case ConsultPause:
		if k.State != ConsultActive {
			return wrong()
		}
		k.checkpoint(now)
		k.State = ConsultPaused
	case ConsultResume:
		if k.State != ConsultPaused {
			return wrong()
		}
		k.checkpoint(now)
		k.State = ConsultActive
	case ConsultEnd:
		if k.State != ConsultActive && k.State != ConsultPaused {
			return wrong()
		}
		r := EndByHost
		switch ch.Actor {
		case ActorConsultant:
			r = EndByConsultant
		case ActorCustomer:
			r = EndByCustomer
		}
		k.finish(r, now)
	case ConsultTimeUp:
		if k.State != ConsultActive {
			return wrong()
		}
		return Errf(CodeConflict, "the consultation has time left")
	case ConsultExtend:
		if ch.Seconds <= 0 {
			return Errf(CodeBadRequest, "seconds must be a positive number of seconds")
		}
		if ch.Seconds > MaxConsultSeconds || k.BoughtSec+ch.Seconds > MaxConsultSeconds {
			return Errf(CodeBadRequest, "a consultation may not exceed "+strconv.Itoa(MaxConsultSeconds)+" seconds")
		}
		// When the time ran out and the timer has not fired yet, the
		// checkpoint charges up to the deadline only: the gap until now
		// is free and the clock goes on from now with the new seconds.
		k.checkpoint(now)
		k.BoughtSec += ch.Seconds
		k.Extensions = append(k.Extensions, Extension{Seconds: ch.Seconds, At: now, Ref: ch.Ref})
	default:
		return Errf(CodeBadRequest, "unknown consultation action")
	}
	return nil
}

// MaxConsultSeconds caps the time of one consultation (bought plus free):
// 30 days.
const MaxConsultSeconds = 30 * 24 * 3600

func (k *Consultation) start(now int64) {
	k.State = ConsultActive
	k.StartedAt = now
	k.Since = now
	k.ExpiresAt = 0
}

// finish moves k to its final state at `at`, folding the open stretch in.
func (k *Consultation) finish(r EndReason, at int64) {
	k.checkpoint(at)
	switch r {
	case EndDeclined, EndCancelled:
		k.State = ConsultCancelled
	case EndExpired:
		k.State = ConsultExpired
	default:
		k.State = ConsultEnded
	}
	k.EndReason = r
	k.EndedAt = at
	k.ExpiresAt = 0
}

// Resume applies the restart rule to a consultation loaded from the store
// at now: its saved checkpoint is all it consumed, so the clock continues
// from now with the time it had left at its last saved change. The time
// between that change and now (the rest of its run before the stop, and the
// downtime) is not charged, and not counted as paused either.
func (k *Consultation) Resume(now int64) { k.TakeOver(0, now) }

// TakeOver applies the takeover rule (docs/consultations.md, "On a
// cluster") to a consultation loaded from the store at now by a node that
// takes it over from an owner whose lease ran out at servedUntil
// (servedUntil <= now): the cluster served it up to then, so the time from
// its saved checkpoint to servedUntil ran by the wall clock — used while
// active, paused while paused — and the clock continues from now. The gap
// from servedUntil to now, while no node ran its clock, is not charged. An
// active consultation whose deadline is not after servedUntil ran out
// while it was served: it is left as saved, with no time left at now, and
// the clock ends it at once, at that deadline. servedUntil 0 (or any time
// not after the checkpoint) charges nothing since the checkpoint: the
// restart rule (Resume).
func (k *Consultation) TakeOver(servedUntil, now int64) {
	switch k.State {
	case ConsultActive:
		if servedUntil > 0 && k.Deadline() <= servedUntil {
			return
		}
	case ConsultPaused:
	default:
		return
	}
	k.checkpoint(servedUntil)
	k.Since = now
}

// MaySend reports whether uid may send into the consultation at now, and
// why not. Before the start only the customer may write (a first
// question), and under StartFirstReply the consultant too (their message
// starts the clock); after the end nobody.
func (k *Consultation) MaySend(uid string, now int64) error {
	switch k.State {
	case ConsultActive:
		if k.RemainingAt(now) <= 0 {
			return Errf(CodeForbidden, "the consultation has ended")
		}
		return nil
	case ConsultPaused:
		return nil
	case ConsultPending:
		if uid == k.Customer {
			return nil
		}
		if uid == k.Consultant && k.Start == StartFirstReply {
			return nil
		}
		return Errf(CodeForbidden, "the consultation has not started: accept it first")
	case ConsultEnded:
		return Errf(CodeForbidden, "the consultation has ended")
	}
	return Errf(CodeForbidden, "the consultation is "+k.State.String())
}

// ActorOf says whether uid is the consultant or the customer of k (0 when
// neither).
func (k *Consultation) ActorOf(uid string) ConsultActor {
	switch uid {
	case k.Consultant:
		return ActorConsultant
	case k.Customer:
		return ActorCustomer
	}
	return 0
}
