package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"chatd/httpapi/apiclient"
)

func init() {
	register(&command{
		name: "group create", args: "--owner U --name NAME --members a,b,c [--avatar URL]",
		summary: "create a group; prints its session id",
		setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
			owner := fs.String("owner", "", "owner uid (required)")
			name := fs.String("name", "", "group name (required)")
			avatar := fs.String("avatar", "", "group avatar URL")
			members := fs.String("members", "", "comma-separated member uids (the owner is always a member)")
			return func(ctx context.Context, e *env) error {
				if *owner == "" || *name == "" {
					return usagef("group create: --owner and --name are required")
				}
				in := apiclient.GroupInput{Owner: *owner, Name: *name, Avatar: *avatar, Members: []string{}}
				for _, m := range strings.Split(*members, ",") {
					if m = strings.TrimSpace(m); m != "" {
						in.Members = append(in.Members, m)
					}
				}
				c, err := e.client(false, true)
				if err != nil {
					return err
				}
				s, err := c.CreateGroup(ctx, in)
				if err != nil {
					return err
				}
				return e.print(s, func(w io.Writer) {
					fmt.Fprintf(w, "group %q created: session %d\n", s.Name, s.ID)
				})
			}
		},
	})
}
