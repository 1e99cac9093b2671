package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"chatd/chat"
)

func init() {
	register(&command{
		name: "service", args: `'{"action":"shop_put","shop":"s1",…}'`, positional: true,
		summary: "run one customer-service host action (POST /api/v1/service; docs/customer-service.md)",
		setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
			return func(ctx context.Context, e *env) error {
				if len(e.args) != 1 || !json.Valid([]byte(e.args[0])) {
					return usagef("service: give one JSON object, e.g. '{\"action\":\"shops\"}'; actions: %v", chat.ServiceHostActions)
				}
				c, err := e.client(false, true)
				if err != nil {
					return err
				}
				var out json.RawMessage
				if err := c.Do(ctx, "POST", "/api/v1/service", json.RawMessage(e.args[0]), &out); err != nil {
					return err
				}
				return e.print(out, func(w io.Writer) { fmt.Fprintf(w, "%s\n", out) })
			}
		},
	})
	register(&command{
		name: "client", args: `--uid U '{"action":"service_open","shop":"s1"}'`, positional: true,
		summary: "run one client action as user U (a short-lived token, POST /v1/client) and print its reply's data",
		setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
			uid := fs.String("uid", "", "the user to act as (required)")
			return func(ctx context.Context, e *env) error {
				if *uid == "" || len(e.args) != 1 || !json.Valid([]byte(e.args[0])) {
					return usagef(`client: give --uid and one JSON action, e.g. --uid ann '{"action":"sessions"}'`)
				}
				c, err := e.client(false, true)
				if err != nil {
					return err
				}
				g, err := c.IssueToken(ctx, *uid, 5*time.Minute)
				if err != nil {
					return err
				}
				raw, err := c.ClientDo(ctx, g.Token, json.RawMessage(e.args[0]))
				if err != nil {
					return err
				}
				var r struct {
					OK    bool            `json:"ok"`
					Data  json.RawMessage `json:"data"`
					Error *chat.Error     `json:"error"`
				}
				if err := json.Unmarshal(raw, &r); err != nil {
					return fmt.Errorf("client: the answer is not JSON: %s", raw)
				}
				if !r.OK {
					if r.Error == nil {
						return fmt.Errorf("client: %s", raw)
					}
					return r.Error
				}
				if len(r.Data) == 0 {
					r.Data = json.RawMessage("null")
				}
				return e.print(r.Data, func(w io.Writer) { fmt.Fprintf(w, "%s\n", r.Data) })
			}
		},
	})
}
