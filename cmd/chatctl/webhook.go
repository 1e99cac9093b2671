package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"chatd/httpapi/apiclient"
)

// The webhook commands manage an app's webhook endpoints and deliveries
// (docs/webhooks.md). They sign with the app's credentials.

func splitEvents(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func printEndpoint(w io.Writer, ep apiclient.WebhookEndpoint) {
	state := "enabled"
	if !ep.Enabled {
		state = "disabled"
	}
	fmt.Fprintf(w, "%s  %s  %s  events=%s  secret=%s\n", ep.ID, state, ep.URL, strings.Join(ep.Events, ","), ep.Secret)
}

func init() {
	register(&command{
		name: "webhook list", args: "",
		summary: "list the app's webhook endpoints (with their secrets)",
		setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
			return func(ctx context.Context, e *env) error {
				c, err := e.client(false, true)
				if err != nil {
					return err
				}
				eps, err := c.WebhookEndpoints(ctx)
				if err != nil {
					return err
				}
				return e.print(eps, func(w io.Writer) {
					if len(eps) == 0 {
						fmt.Fprintln(w, "no webhook endpoints")
					}
					for _, ep := range eps {
						printEndpoint(w, ep)
					}
				})
			}
		},
	})
	register(&command{
		name: "webhook add", args: "--url URL --events TYPE,TYPE|* [--signing-secret S] [--disabled]",
		summary: "register a webhook endpoint; prints its id and signing secret",
		setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
			url := fs.String("url", "", "where to POST the events (http:// or https://)")
			events := fs.String("events", "", "comma-separated event types, or * for all")
			secret := fs.String("signing-secret", "", "the endpoint's signing secret (16-256 bytes); empty generates one")
			disabled := fs.Bool("disabled", false, "register it disabled")
			return func(ctx context.Context, e *env) error {
				if *url == "" || *events == "" {
					return usagef("webhook add: --url and --events are needed")
				}
				enabled := !*disabled
				in := apiclient.WebhookEndpointInput{URL: url, Events: splitEvents(*events), Enabled: &enabled}
				if *secret != "" {
					in.Secret = secret
				}
				c, err := e.client(false, true)
				if err != nil {
					return err
				}
				ep, err := c.CreateWebhookEndpoint(ctx, in)
				if err != nil {
					return err
				}
				return e.print(ep, func(w io.Writer) { printEndpoint(w, ep) })
			}
		},
	})
	register(&command{
		name: "webhook set", args: "--id ID [--url URL] [--events T,T] [--signing-secret S] [--enable|--disable]",
		summary: "change a webhook endpoint",
		setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
			id := fs.String("id", "", "endpoint id")
			url := fs.String("url", "", "new URL")
			events := fs.String("events", "", "new comma-separated event types, or *")
			secret := fs.String("signing-secret", "", "new signing secret for the endpoint")
			enable := fs.Bool("enable", false, "enable it")
			disable := fs.Bool("disable", false, "disable it (its deliveries wait)")
			return func(ctx context.Context, e *env) error {
				if *id == "" {
					return usagef("webhook set: --id is needed")
				}
				if *enable && *disable {
					return usagef("webhook set: --enable or --disable, not both")
				}
				in := apiclient.WebhookEndpointInput{ID: *id, Events: splitEvents(*events)}
				if *url != "" {
					in.URL = url
				}
				if *secret != "" {
					in.Secret = secret
				}
				if *enable || *disable {
					v := *enable
					in.Enabled = &v
				}
				c, err := e.client(false, true)
				if err != nil {
					return err
				}
				ep, err := c.UpdateWebhookEndpoint(ctx, in)
				if err != nil {
					return err
				}
				return e.print(ep, func(w io.Writer) { printEndpoint(w, ep) })
			}
		},
	})
	register(&command{
		name: "webhook rm", args: "--id ID",
		summary: "delete a webhook endpoint (its pending deliveries fail)",
		setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
			id := fs.String("id", "", "endpoint id")
			return func(ctx context.Context, e *env) error {
				if *id == "" {
					return usagef("webhook rm: --id is needed")
				}
				c, err := e.client(false, true)
				if err != nil {
					return err
				}
				if err := c.DeleteWebhookEndpoint(ctx, *id); err != nil {
					return err
				}
				return e.print(map[string]string{"deleted": *id}, func(w io.Writer) { fmt.Fprintln(w, "deleted", *id) })
			}
		},
	})
	register(&command{
		name: "webhook deliveries", args: "[--limit N] [--before ID] [--status pending|delivered|failed] [--body]",
		summary: "list recent webhook deliveries, newest first, with status and response code",
		setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
			limit := fs.Int("limit", 20, "how many (at most 500)")
			before := fs.String("before", "", "list those older than this delivery id")
			status := fs.String("status", "", "only pending, delivered or failed ones")
			body := fs.Bool("body", false, "include the bodies sent")
			return func(ctx context.Context, e *env) error {
				c, err := e.client(false, true)
				if err != nil {
					return err
				}
				ds, err := c.WebhookDeliveries(ctx, *limit, *before, *status, *body)
				if err != nil {
					return err
				}
				return e.print(ds, func(w io.Writer) {
					if len(ds) == 0 {
						fmt.Fprintln(w, "no deliveries")
					}
					for _, d := range ds {
						fmt.Fprintf(w, "%s  %-15s %-9s attempts=%d code=%d  %s", d.ID, d.Type, d.Status, d.Attempts, d.ResponseCode,
							time.UnixMilli(d.CreatedAt).UTC().Format(time.RFC3339))
						if d.Error != "" {
							fmt.Fprintf(w, "  error: %s", d.Error)
						}
						fmt.Fprintln(w)
						if *body {
							fmt.Fprintf(w, "    %s\n", d.Body)
						}
					}
				})
			}
		},
	})
	register(&command{
		name: "webhook redeliver", args: "(--id ID[,ID…] | --from EVENT [--to EVENT] [--endpoint EP] [--failed])",
		summary: "send webhook deliveries again (same delivery id and body)",
		setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
			ids := fs.String("id", "", "comma-separated delivery ids")
			from := fs.String("from", "", "first event id of a range")
			to := fs.String("to", "", "last event id of the range (default: --from)")
			ep := fs.String("endpoint", "", "with a range: only this endpoint's deliveries")
			failed := fs.Bool("failed", false, "with a range: only failed deliveries")
			return func(ctx context.Context, e *env) error {
				if (*ids == "") == (*from == "") {
					return usagef("webhook redeliver: give --id or --from")
				}
				in := apiclient.Redeliver{DeliveryIDs: splitEvents(*ids), FromEvent: *from, ToEvent: *to, Endpoint: *ep, FailedOnly: *failed}
				c, err := e.client(false, true)
				if err != nil {
					return err
				}
				n, err := c.RedeliverWebhooks(ctx, in)
				if err != nil {
					return err
				}
				return e.print(map[string]int{"queued": n}, func(w io.Writer) { fmt.Fprintf(w, "queued %d deliveries\n", n) })
			}
		},
	})
}

func init() {
	register(&command{
		name: "webhook hook", args: "[--url URL] [--wait 300ms] [--on-timeout allow|reject] [--enable|--disable]",
		summary: "show or set the app's before-send hook (a filter that may reject or rewrite each message)",
		setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
			url := fs.String("url", "", "the filter's URL")
			timeout := fs.Duration("wait", 0, "how long a send waits for the filter (10ms-5s)")
			onTimeout := fs.String("on-timeout", "", "allow or reject the message when the filter does not answer in time (or fails)")
			enable := fs.Bool("enable", false, "turn it on")
			disable := fs.Bool("disable", false, "turn it off")
			return func(ctx context.Context, e *env) error {
				if *enable && *disable {
					return usagef("webhook hook: --enable or --disable, not both")
				}
				c, err := e.client(false, true)
				if err != nil {
					return err
				}
				var h apiclient.BeforeSendHook
				if *url == "" && *timeout == 0 && *onTimeout == "" && !*enable && !*disable {
					h, err = c.BeforeSendHook(ctx)
				} else {
					in := apiclient.BeforeSendHookInput{}
					if *url != "" {
						in.URL = url
					}
					if *timeout != 0 {
						ms := int(timeout.Milliseconds())
						in.TimeoutMS = &ms
					}
					if *onTimeout != "" {
						in.OnTimeout = onTimeout
					}
					if *enable || *disable {
						v := *enable
						in.Enabled = &v
					}
					h, err = c.SetBeforeSendHook(ctx, in)
				}
				if err != nil {
					return err
				}
				return e.print(h, func(w io.Writer) {
					state := "enabled"
					if !h.Enabled {
						state = "disabled"
					}
					fmt.Fprintf(w, "%s  %s  timeout=%dms  on_timeout=%s  secret=%s\n", state, h.URL, h.TimeoutMS, h.OnTimeout, h.Secret)
				})
			}
		},
	})
}
