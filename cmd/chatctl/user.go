package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"chatd/httpapi/apiclient"
)

func init() {
	register(&command{
		name: "user push", args: "--uid U [--nickname N] [--avatar URL] [--extra JSON] [--token [--ttl D]]",
		summary: "create or update a user of an app (fields left out stay as stored); with --token also issue a chat token and print it",
		setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
			uid := fs.String("uid", "", "the host site's user id (required)")
			nick := fs.String("nickname", "", "display name (left out: an existing user keeps theirs; the uid for a new one)")
			avatar := fs.String("avatar", "", "avatar URL (left out: an existing user keeps theirs)")
			extra := fs.String("extra", "", "extra JSON stored with the user (left out: an existing user keeps theirs)")
			token := fs.Bool("token", false, "also issue a chat token")
			ttl := fs.Duration("ttl", 0, "token lifetime; 0 means the server's token_ttl")
			return func(ctx context.Context, e *env) error {
				if *uid == "" {
					return usagef("user push: --uid is required")
				}
				in := apiclient.PushUserInput{UID: *uid, Nickname: *nick, Avatar: *avatar,
					IssueToken: *token, TokenTTL: int64(*ttl / time.Second)}
				if *extra != "" {
					if !json.Valid([]byte(*extra)) {
						return usagef("user push: --extra is not valid JSON")
					}
					in.Extra = json.RawMessage(*extra)
				}
				c, err := e.client(false, true)
				if err != nil {
					return err
				}
				r, err := c.PushUser(ctx, in)
				if err != nil {
					return err
				}
				return e.print(r, func(w io.Writer) {
					fmt.Fprintf(w, "user %s (%s) saved\n", r.User.UID, r.User.Nickname)
					if r.Token != "" {
						fmt.Fprintf(w, "token   %s\nexpires %s\n", r.Token, time.UnixMilli(r.ExpiresAt).UTC().Format(time.RFC3339))
					}
				})
			}
		},
	})
	register(&command{
		name: "token issue", args: "--uid U [--ttl D]",
		summary: "issue a chat token for an existing user and print it",
		setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
			uid := fs.String("uid", "", "user id (required)")
			ttl := fs.Duration("ttl", 0, "token lifetime; 0 means the server's token_ttl")
			return func(ctx context.Context, e *env) error {
				if *uid == "" {
					return usagef("token issue: --uid is required")
				}
				c, err := e.client(false, true)
				if err != nil {
					return err
				}
				g, err := c.IssueToken(ctx, *uid, *ttl)
				if err != nil {
					return err
				}
				return e.print(g, func(w io.Writer) {
					fmt.Fprintf(w, "token   %s\nexpires %s\n", g.Token, time.UnixMilli(g.ExpiresAt).UTC().Format(time.RFC3339))
				})
			}
		},
	})
	register(&command{
		name: "token revoke", args: "--token T | --uid U",
		summary: "revoke one chat token, or every token of a user; their connections are closed",
		setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
			token := fs.String("token", "", "the token to revoke")
			uid := fs.String("uid", "", "revoke every token of this user")
			return func(ctx context.Context, e *env) error {
				if (*token == "") == (*uid == "") {
					return usagef("token revoke: give exactly one of --token and --uid")
				}
				c, err := e.client(false, true)
				if err != nil {
					return err
				}
				var r apiclient.RevokeResult
				if *token != "" {
					r, err = c.RevokeToken(ctx, *token)
				} else {
					r.Kicked, err = c.RevokeUserTokens(ctx, *uid)
					r.Revoked = err == nil
				}
				if err != nil {
					return err
				}
				return e.print(r, func(w io.Writer) {
					fmt.Fprintf(w, "revoked; %d connection(s) closed\n", r.Kicked)
				})
			}
		},
	})
}
