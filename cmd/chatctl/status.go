package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"
)

func init() {
	register(&command{
		name: "status", summary: "show the server's status: pid, version, uptime, addresses, connections",
		setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
			return func(ctx context.Context, e *env) error {
				c, err := e.client(true, false)
				if err != nil {
					return err
				}
				st, err := c.Status(ctx)
				if err != nil {
					return err
				}
				return e.print(st, func(w io.Writer) {
					fmt.Fprintf(w, "pid           %d\nversion       %s\nuptime        %s\nwebsocket     %s\nhttp          %s\ndata          %s\nconnections   %d\nusers online  %d\ngoroutines    %d\nheap          %d MiB\nrss           %d MiB\n",
						st.PID, st.Version, time.Duration(st.UptimeSeconds)*time.Second, st.WSAddr, st.HTTPAddr,
						st.DataDir, st.Conns, st.UsersOnline, st.Goroutines, st.HeapBytes>>20, st.RSSBytes>>20)
				})
			}
		},
	})
}
