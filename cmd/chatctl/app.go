package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"chatd/httpapi/apiclient"
	"chatd/internal/proc"
)

func init() {
	register(&command{
		name: "app create", args: "--name NAME [--id ID]",
		summary: "register a host site or app; prints its id and secret",
		setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
			name := fs.String("name", "", "display name of the app (required)")
			id := fs.String("id", "", "app id; empty lets the server pick one")
			return func(ctx context.Context, e *env) error {
				if *name == "" {
					return usagef("app create: --name is required")
				}
				c, err := e.client(true, false)
				if err != nil {
					return err
				}
				a, err := c.CreateApp(ctx, *id, *name)
				if err != nil {
					return err
				}
				return e.print(a, func(w io.Writer) {
					fmt.Fprintf(w, "app created\n  id      %s\n  name    %s\n  secret  %s\n", a.ID, a.Name, a.Secret)
					fmt.Fprintf(w, "next, push a user and get a chat token (README.md, step 3):\n  %s user push%s --app %s --secret %s --uid alice --nickname Alice --token\n",
						self, e.conn.dataFlag(), proc.ShellQuote(a.ID), proc.ShellQuote(a.Secret))
				})
			}
		},
	})
	register(&command{
		name: "app list", summary: "list the apps with their secrets",
		setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
			return func(ctx context.Context, e *env) error {
				c, err := e.client(true, false)
				if err != nil {
					return err
				}
				apps, err := c.Apps(ctx)
				if err != nil {
					return err
				}
				if apps == nil {
					apps = []apiclient.App{}
				}
				return e.print(apps, func(w io.Writer) {
					if len(apps) == 0 {
						fmt.Fprintf(w, "no apps yet (%s app create%s --id ID --name NAME)\n", self, e.conn.dataFlag())
					}
					for _, a := range apps {
						fmt.Fprintf(w, "%s\t%s\t%s\n", a.ID, a.Secret, a.Name)
					}
				})
			}
		},
	})
}
