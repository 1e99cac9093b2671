package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"chatd/chat"
)

// The host's side of timed consultations (docs/consultations.md), over
// the signed server API.
func init() {
	register(&command{
		name: "consult create", args: "--consultant U --customer V --seconds N [--free N] [--price P --currency C] [--start accept|first_reply|now] [--expires-in N] [--ref R]",
		summary: "sell time with a consultant: create a consultation and its session; prints its id and state",
		setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
			consultant := fs.String("consultant", "", "the consultant's uid (required)")
			customer := fs.String("customer", "", "the customer's uid (required)")
			seconds := fs.Int64("seconds", 0, "seconds bought (required)")
			free := fs.Int64("free", -1, "free seconds, used before paid time (left out: the consultant's allowance the customer has left)")
			price := fs.Int64("price", 0, "price per minute in the currency's smallest unit (copied into the billing record)")
			currency := fs.String("currency", "", "currency code (copied into the billing record)")
			start := fs.String("start", "accept", "when the clock starts: accept, first_reply or now")
			expires := fs.Int64("expires-in", 0, "seconds it may wait unstarted; 0 means the server's consult_pending_ttl")
			ref := fs.String("ref", "", "your order id, kept in the billing record")
			return func(ctx context.Context, e *env) error {
				if *consultant == "" || *customer == "" || *seconds == 0 {
					return usagef("consult create: --consultant, --customer and --seconds are required")
				}
				in := map[string]any{"consultant": *consultant, "customer": *customer, "seconds": *seconds,
					"price_per_minute": *price, "currency": *currency, "start": *start, "expires_in": *expires, "ref": *ref}
				if *free >= 0 {
					in["free_seconds"] = *free
				}
				c, err := e.client(false, true)
				if err != nil {
					return err
				}
				var v chat.ConsultView
				if err := c.Do(ctx, "POST", "/api/v1/consultations", in, &v); err != nil {
					return err
				}
				return e.print(v, func(w io.Writer) { printConsult(w, &v) })
			}
		},
	})
	register(&command{
		name: "consult show", args: "--id N",
		summary: "print a consultation's state and clock",
		setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
			id := fs.Uint64("id", 0, "the consultation's id (its session id; required)")
			return func(ctx context.Context, e *env) error {
				if *id == 0 {
					return usagef("consult show: --id is required")
				}
				c, err := e.client(false, true)
				if err != nil {
					return err
				}
				var v chat.ConsultView
				if err := c.Do(ctx, "GET", "/api/v1/consultations/"+strconv.FormatUint(*id, 10), nil, &v); err != nil {
					return err
				}
				return e.print(v, func(w io.Writer) { printConsult(w, &v) })
			}
		},
	})
	for _, verb := range []string{"extend", "pause", "resume", "end", "cancel"} {
		args, summary := "--id N", map[string]string{
			"pause":  "stop a running consultation's clock",
			"resume": "restart a paused consultation's clock",
			"end":    "end a consultation now (reason ended_by_host)",
			"cancel": "cancel a consultation that has not started",
		}[verb]
		if verb == "extend" {
			args, summary = "--id N --seconds N [--ref R]", "add time the customer bought (while pending, active or paused)"
		}
		register(&command{
			name: "consult " + verb, args: args, summary: summary,
			setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
				id := fs.Uint64("id", 0, "the consultation's id (required)")
				var seconds *int64
				var ref *string
				if verb == "extend" {
					seconds = fs.Int64("seconds", 0, "seconds bought (required)")
					ref = fs.String("ref", "", "your order id, kept in the billing record's extensions")
				}
				return func(ctx context.Context, e *env) error {
					if *id == 0 {
						return usagef("consult %s: --id is required", verb)
					}
					in := map[string]any{"action": verb}
					if verb == "extend" {
						if *seconds == 0 {
							return usagef("consult extend: --seconds is required")
						}
						in["seconds"], in["ref"] = *seconds, *ref
					}
					c, err := e.client(false, true)
					if err != nil {
						return err
					}
					var v chat.ConsultView
					if err := c.Do(ctx, "POST", "/api/v1/consultations/"+strconv.FormatUint(*id, 10), in, &v); err != nil {
						return err
					}
					return e.print(v, func(w io.Writer) { printConsult(w, &v) })
				}
			},
		})
	}
	register(&command{
		name: "consult record", args: "--id N",
		summary: "print the billing record of a consultation that has ended (or expired, or was cancelled)",
		setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
			id := fs.Uint64("id", 0, "the consultation's id (required)")
			return func(ctx context.Context, e *env) error {
				if *id == 0 {
					return usagef("consult record: --id is required")
				}
				c, err := e.client(false, true)
				if err != nil {
					return err
				}
				var r chat.ConsultRecord
				if err := c.Do(ctx, "GET", "/api/v1/consultations/"+strconv.FormatUint(*id, 10)+"/record", nil, &r); err != nil {
					return err
				}
				return e.print(r, func(w io.Writer) { printRecord(w, &r) })
			}
		},
	})
	register(&command{
		name: "consult records", args: "(--consultant U | --customer V) [--from T] [--to T] [--after CURSOR] [--limit N]",
		summary: "list billing records of a consultant or a customer, oldest first",
		setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
			consultant := fs.String("consultant", "", "the consultant's uid")
			customer := fs.String("customer", "", "the customer's uid")
			from := fs.Int64("from", 0, "only records ended at or after this time (unix ms)")
			to := fs.Int64("to", 0, "only records ended at or before this time (unix ms)")
			after := fs.String("after", "", "the cursor a previous page printed")
			limit := fs.Int("limit", 0, "page size; 0 means 50")
			return func(ctx context.Context, e *env) error {
				if (*consultant == "") == (*customer == "") {
					return usagef("consult records: give exactly one of --consultant and --customer")
				}
				q := url.Values{}
				for k, v := range map[string]string{"consultant": *consultant, "customer": *customer, "after": *after} {
					if v != "" {
						q.Set(k, v)
					}
				}
				for k, v := range map[string]int64{"from": *from, "to": *to, "limit": int64(*limit)} {
					if v != 0 {
						q.Set(k, strconv.FormatInt(v, 10))
					}
				}
				c, err := e.client(false, true)
				if err != nil {
					return err
				}
				var p chat.ConsultRecordsPage
				if err := c.Do(ctx, "GET", "/api/v1/consult-records?"+q.Encode(), nil, &p); err != nil {
					return err
				}
				return e.print(p, func(w io.Writer) {
					if len(p.Records) == 0 {
						fmt.Fprintln(w, "no records")
					}
					for i := range p.Records {
						printRecord(w, &p.Records[i])
					}
					if p.Next != "" {
						fmt.Fprintf(w, "more: --after %s\n", p.Next)
					}
				})
			}
		},
	})
	register(&command{
		name: "consultant set", args: "--uid U --free N",
		summary: "set a consultant's free allowance: seconds each customer gets free with them, across consultations",
		setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
			uid := fs.String("uid", "", "the consultant's uid (required)")
			free := fs.Int64("free", 0, "free seconds per customer")
			return func(ctx context.Context, e *env) error {
				if *uid == "" {
					return usagef("consultant set: --uid is required")
				}
				c, err := e.client(false, true)
				if err != nil {
					return err
				}
				var s chat.ConsultantSettings
				if err := c.Do(ctx, "POST", "/api/v1/consultants/"+url.PathEscape(*uid), map[string]any{"free_seconds": *free}, &s); err != nil {
					return err
				}
				return e.print(s, func(w io.Writer) {
					fmt.Fprintf(w, "consultant %s: %d s free per customer\n", *uid, s.FreeSeconds)
				})
			}
		},
	})
}

// printConsult writes a consultation in a few lines:
//
//	consultation 3: active, 860 s left (until 12:14:05 UTC)
//	  lawyer ← alice  bought 900 s + 0 s free  200 CNY/min (per started minute)  start: accept
func printConsult(w io.Writer, v *chat.ConsultView) {
	fmt.Fprintf(w, "consultation %d: %s, %d s left", v.ID, v.State, v.RemainingSeconds)
	if v.Deadline > 0 {
		fmt.Fprintf(w, " (until %s UTC)", time.UnixMilli(v.Deadline).UTC().Format("15:04:05"))
	}
	if v.EndReason != 0 {
		fmt.Fprintf(w, ", %s", v.EndReason)
	}
	fmt.Fprintf(w, "\n  %s ← %s  bought %d s + %d s free  %s  start: %s\n", v.Consultant, v.Customer,
		v.BoughtSec, v.FreeSec, price(v.PricePerMinute, v.Currency, v.Rounding), v.Start)
}

func price(p int64, currency string, r chat.Rounding) string {
	rule := "per started minute"
	if r == chat.RoundPerSecond {
		rule = "per second"
	}
	return strings.TrimSpace(fmt.Sprintf("%d %s/min (%s)", p, currency, rule))
}

// printRecord writes a billing record:
//
//	record 3: ended time_up  lawyer ← alice  active 1200 s (free 0, billed 1200)  paused 0 s  amount 4000 CNY
//	  extensions: +300 s order-2
func printRecord(w io.Writer, r *chat.ConsultRecord) {
	fmt.Fprintf(w, "record %d: %s %s  %s ← %s  active %d s (free %d, billed %d)  paused %d s  amount %d %s\n",
		r.ID, r.State, r.EndReason, r.Consultant, r.Customer, r.ActiveSeconds, r.FreeUsed, r.BilledSeconds,
		r.PausedSeconds, r.Amount, r.Currency)
	if len(r.Extensions) > 0 {
		fmt.Fprint(w, "  extensions:")
		for _, x := range r.Extensions {
			fmt.Fprintf(w, " +%d s", x.Seconds)
			if x.Ref != "" {
				fmt.Fprintf(w, " %s", x.Ref)
			}
		}
		fmt.Fprintln(w)
	}
}
