package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"chatd/httpapi/apiclient"
)

// Moderation of an app's users (POST/GET /api/v1/moderation) and its caps
// (POST/GET /api/v1/app/limits), signed with the app's secret.

func init() {
	for _, action := range []string{"ban", "mute"} {
		register(&command{
			name: "user " + action, args: "--uid U [--for D | --until T] [--reason R]",
			summary: map[string]string{
				"ban":  "ban a user: close their connections (4004) and refuse logins, for D, until T or for ever",
				"mute": "mute a user app-wide: refuse their sends, for D, until T or for ever",
			}[action],
			setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
				uid := fs.String("uid", "", "user id (required)")
				dur := fs.Duration("for", 0, "how long, e.g. 30m or 72h; with neither --for nor --until: for ever")
				until := fs.String("until", "", "end time, RFC 3339 (2026-12-31T23:00:00Z)")
				reason := fs.String("reason", "", "why; shown to the user when refused")
				return func(ctx context.Context, e *env) error {
					if *uid == "" {
						return usagef("user %s: --uid is required", action)
					}
					in := apiclient.ModerationInput{Action: action, UID: *uid, Reason: *reason}
					switch {
					case *dur != 0 && *until != "":
						return usagef("user %s: give --for or --until, not both", action)
					case *dur < 0:
						return usagef("user %s: --for must be positive", action)
					case *dur > 0:
						in.DurationMS = dur.Milliseconds()
					case *until != "":
						t, err := time.Parse(time.RFC3339, *until)
						if err != nil {
							return usagef("user %s: --until: want RFC 3339 such as 2026-12-31T23:00:00Z", action)
						}
						in.Until = t.UnixMilli()
					}
					return moderate(ctx, e, in)
				}
			},
		})
	}
	for _, action := range []string{"unban", "unmute", "kick"} {
		register(&command{
			name: "user " + action, args: "--uid U",
			summary: map[string]string{
				"unban":  "lift a user's ban",
				"unmute": "lift a user's mute",
				"kick":   "close every connection of a user (4002); they may log in again",
			}[action],
			setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
				uid := fs.String("uid", "", "user id (required)")
				return func(ctx context.Context, e *env) error {
					if *uid == "" {
						return usagef("user %s: --uid is required", action)
					}
					return moderate(ctx, e, apiclient.ModerationInput{Action: action, UID: *uid})
				}
			},
		})
	}
	register(&command{
		name: "moderation", args: "",
		summary: "list the app's banned and muted users with their end times",
		setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
			return func(ctx context.Context, e *env) error {
				c, err := e.client(false, true)
				if err != nil {
					return err
				}
				l, err := c.Moderation(ctx)
				if err != nil {
					return err
				}
				return e.print(l, func(w io.Writer) {
					list := func(what string, rs []apiclient.Restriction) {
						fmt.Fprintf(w, "%s: %d\n", what, len(rs))
						for _, r := range rs {
							fmt.Fprintf(w, "  %-20s %s", r.UID, untilText(r.Until))
							if r.Reason != "" {
								fmt.Fprintf(w, "  (%s)", r.Reason)
							}
							fmt.Fprintln(w)
						}
					}
					list("banned", l.Banned)
					list("muted", l.Muted)
				})
			}
		},
	})
	register(&command{
		name: "app limits", args: "[--max-users N] [--max-groups N]",
		summary: "show the app's caps on users and groups and its counts; with flags, set them (0: no cap)",
		setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
			users := fs.Int("max-users", -1, "most users the app may have (0: no cap)")
			groups := fs.Int("max-groups", -1, "most groups the app may have (0: no cap)")
			return func(ctx context.Context, e *env) error {
				c, err := e.client(false, true)
				if err != nil {
					return err
				}
				var in apiclient.AppLimitsInput
				if *users >= 0 {
					in.MaxUsers = users
				}
				if *groups >= 0 {
					in.MaxGroups = groups
				}
				var l apiclient.AppLimits
				if in.MaxUsers == nil && in.MaxGroups == nil {
					l, err = c.AppLimits(ctx)
				} else {
					l, err = c.SetAppLimits(ctx, in)
				}
				if err != nil {
					return err
				}
				return e.print(l, func(w io.Writer) {
					fmt.Fprintf(w, "users  %d of %s\ngroups %d of %s\n", l.Users, capText(l.MaxUsers), l.Groups, capText(l.MaxGroups))
				})
			}
		},
	})
}

func moderate(ctx context.Context, e *env, in apiclient.ModerationInput) error {
	c, err := e.client(false, true)
	if err != nil {
		return err
	}
	r, err := c.Moderate(ctx, in)
	if err != nil {
		return err
	}
	return e.print(r, func(w io.Writer) {
		switch in.Action {
		case "ban":
			fmt.Fprintf(w, "%s banned %s; %d connection(s) closed\n", r.UID, untilText(r.Until), r.Kicked)
		case "mute":
			fmt.Fprintf(w, "%s muted %s\n", r.UID, untilText(r.Until))
		case "kick":
			fmt.Fprintf(w, "%s kicked; %d connection(s) closed\n", r.UID, r.Kicked)
		default:
			fmt.Fprintf(w, "%s: %s done\n", r.UID, in.Action)
		}
	})
}

func untilText(ms int64) string {
	if ms == 0 {
		return "for ever"
	}
	return "until " + time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

func capText(n int) string {
	if n == 0 {
		return "no cap"
	}
	return fmt.Sprint(n)
}
