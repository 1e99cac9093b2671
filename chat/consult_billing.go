package chat

import "strconv"

// Rounding is how a consultation's billed time becomes an amount.
type Rounding uint8

const (
	// RoundPerMinute charges every started minute in full:
	// amount = ceil(billed_seconds / 60) × price_per_minute.
	RoundPerMinute Rounding = iota + 1
	// RoundPerSecond charges the seconds pro rata, rounded up to the
	// smallest currency unit: amount = ceil(billed_seconds × price_per_minute / 60).
	RoundPerSecond
)

var roundingNames = [...]string{"", "minute", "second"}

func (r Rounding) String() string {
	if int(r) < len(roundingNames) && r != 0 {
		return roundingNames[r]
	}
	return "unknown"
}

func (r Rounding) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

func (r *Rounding) UnmarshalText(b []byte) error {
	for i, n := range roundingNames {
		if i > 0 && n == string(b) {
			*r = Rounding(i)
			return nil
		}
	}
	return Errf(CodeBadRequest, `rounding must be "minute" or "second", not `+strconv.Quote(string(b)))
}

// MaxPricePerMinute caps price_per_minute (in the currency's smallest
// unit), so that no amount overflows.
const MaxPricePerMinute = 1_000_000_000

// ConsultRecord is the billing record of a consultation that reached a
// final state. chatd takes no payment: the host reads the record and
// charges (or refunds) on its side. Seconds are whole seconds: a started
// second of active time counts as one.
type ConsultRecord struct {
	ID         SessionID    `json:"id"` // the consultation (its session's id)
	App        string       `json:"app"`
	Consultant string       `json:"consultant"`
	Customer   string       `json:"customer"`
	Ref        string       `json:"ref,omitempty"`
	State      ConsultState `json:"state"` // ended, expired or cancelled
	EndReason  EndReason    `json:"end_reason"`

	CreatedAt int64 `json:"created_at"`
	StartedAt int64 `json:"started_at,omitempty"`
	EndedAt   int64 `json:"ended_at"`

	BoughtSeconds int64 `json:"bought_seconds"` // extensions included
	FreeSeconds   int64 `json:"free_seconds"`   // the free allowance granted
	ActiveSeconds int64 `json:"active_seconds"`
	PausedSeconds int64 `json:"paused_seconds"`
	FreeUsed      int64 `json:"free_used_seconds"`
	BilledSeconds int64 `json:"billed_seconds"`

	PricePerMinute int64    `json:"price_per_minute"`
	Currency       string   `json:"currency,omitempty"`
	Rounding       Rounding `json:"rounding"`
	Amount         int64    `json:"amount"`

	Extensions []Extension `json:"extensions,omitempty"`
}

// Bill computes the billing record of a consultation in a final state.
// Active time is rounded up to whole seconds, the free allowance is
// consumed first, and the rest is billed by k.Rounding. Paused time is
// reported in whole seconds, rounded down; it is never billed.
func (k *Consultation) Bill() ConsultRecord {
	active := (k.UsedMS + 999) / 1000
	free := min(k.FreeSec, active)
	billed := active - free
	r := ConsultRecord{
		ID: k.ID, App: k.App, Consultant: k.Consultant, Customer: k.Customer, Ref: k.Ref,
		State: k.State, EndReason: k.EndReason,
		CreatedAt: k.CreatedAt, StartedAt: k.StartedAt, EndedAt: k.EndedAt,
		BoughtSeconds: k.BoughtSec, FreeSeconds: k.FreeSec,
		ActiveSeconds: active, PausedSeconds: k.PausedMS / 1000,
		FreeUsed: free, BilledSeconds: billed,
		PricePerMinute: k.PricePerMinute, Currency: k.Currency, Rounding: k.Rounding,
		Amount:     Amount(billed, k.PricePerMinute, k.Rounding),
		Extensions: append([]Extension(nil), k.Extensions...),
	}
	return r
}

// Amount is what billed seconds cost at pricePerMinute under rounding.
func Amount(billed, pricePerMinute int64, rounding Rounding) int64 {
	if billed <= 0 || pricePerMinute <= 0 {
		return 0
	}
	if rounding == RoundPerSecond {
		return (billed*pricePerMinute + 59) / 60
	}
	return (billed + 59) / 60 * pricePerMinute
}
