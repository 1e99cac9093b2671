package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

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
}
