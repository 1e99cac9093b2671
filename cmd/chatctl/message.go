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
		name: "send", args: "--from U (--to V | --session N) (--text T | --type TYPE --content JSON) [--cid C]",
		summary: "send a message as a user (empty --from: a system notice); prints its session and seq",
		setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
			from := fs.String("from", "", "sender uid; empty sends a system notice")
			to := fs.String("to", "", "recipient uid (private message or system notice)")
			session := fs.Uint64("session", 0, "target session id (e.g. a group)")
			text := fs.String("text", "", "text message body")
			typ := fs.String("type", "", "message type for --content (default text)")
			content := fs.String("content", "", "message content as a JSON object")
			cid := fs.String("cid", "", "client message id: a retry with the same cid is not stored twice")
			return func(ctx context.Context, e *env) error {
				if (*to == "") == (*session == 0) {
					return usagef("send: give exactly one of --to and --session")
				}
				in := apiclient.SendInput{From: *from, To: *to, Session: *session, Type: *typ, CID: *cid}
				switch {
				case *text != "" && *content != "":
					return usagef("send: give --text or --content, not both")
				case *text != "":
					b, _ := json.Marshal(struct {
						Text string `json:"text"`
					}{*text})
					in.Content = b
				case *content != "":
					if !json.Valid([]byte(*content)) {
						return usagef("send: --content is not valid JSON")
					}
					in.Content = json.RawMessage(*content)
				default:
					return usagef("send: give --text or --content")
				}
				if in.Type == "" {
					in.Type = "text"
				}
				c, err := e.client(false, true)
				if err != nil {
					return err
				}
				r, err := c.Send(ctx, in)
				if err != nil {
					return err
				}
				return e.print(r, func(w io.Writer) {
					dup := ""
					if r.Duplicate {
						dup = " (duplicate cid: the earlier message)"
					}
					fmt.Fprintf(w, "sent: session %d seq %d msg %s%s\n", r.Session, r.Seq, r.MsgID, dup)
				})
			}
		},
	})
	register(&command{
		name: "history", args: "--session N [--before SEQ] [--limit N]",
		summary: "print a page of a session's messages, oldest first",
		setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
			session := fs.Uint64("session", 0, "session id (required)")
			before := fs.Uint64("before", 0, "only messages with seq below this (0: the newest)")
			limit := fs.Int("limit", 0, "page size; 0 means the server's history_limit")
			return func(ctx context.Context, e *env) error {
				if *session == 0 {
					return usagef("history: --session is required")
				}
				c, err := e.client(false, true)
				if err != nil {
					return err
				}
				msgs, err := c.History(ctx, *session, *before, *limit)
				if err != nil {
					return err
				}
				if msgs == nil {
					msgs = []apiclient.Message{}
				}
				return e.print(msgs, func(w io.Writer) {
					if len(msgs) == 0 {
						fmt.Fprintln(w, "no messages")
					}
					for _, m := range msgs {
						from := m.From
						if from == "" {
							from = "(system)"
						}
						at := time.UnixMilli(m.CreatedAt).UTC().Format("2006-01-02 15:04:05")
						fmt.Fprintf(w, "%6d  %s  %-12s %-6s %s\n", m.Seq, at, from, m.Type, m.Content)
					}
				})
			}
		},
	})
}
