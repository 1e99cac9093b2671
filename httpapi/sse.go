package httpapi

import (
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"chatd/chat"
)

// GET /v1/events/stream: the user's events as Server-Sent Events.
//
// Every event is one SSE message whose data is the event's JSON (as a
// WebSocket client receives it) and whose id is the cursor after it, so a
// browser's EventSource that reconnects sends it back as Last-Event-ID and
// resumes after the last event it got: nothing lost, nothing twice. A
// cursor that can no longer be served gets an `event: resync` message
// (data {"cursor":…}) and the stream goes on from the fresh cursor; the
// client reloads with sessions + sync. A comment line every
// StreamHeartbeat keeps proxies from timing the stream out.
//
// EventSource cannot send headers, so besides the Authorization and
// X-Chatd-App headers this endpoint accepts ?app=…&access_token=… (see
// authTokenQuery in route.go).

// sseStream is one event stream, owned by the goroutine running serve.
type sseStream struct {
	srv    *Server
	ident  chat.Identity
	dev    *chat.HTTPDevice
	cursor string
	stop   <-chan struct{}
	origin []byte
	c      net.Conn
	out    []byte
}

// userStream validates the request and takes the connection over.
func (s *Server) userStream(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	cursor := string(ctx.Request.Header.Peek("Last-Event-ID"))
	if cursor == "" {
		cursor = string(ctx.QueryArgs().Peek("cursor"))
	}
	d := s.core.HoldHTTPDevice(r.ident)
	defer d.Release()                // held again by the stream's goroutine
	res, _, err := d.Read(cursor, 1) // a bad cursor is answered before the stream starts
	if err != nil {
		return err
	}
	if cursor == "" {
		cursor = res.Cursor // from now: the events after this request are kept for the stream
	}
	if e := s.pollsFull(d); e != nil {
		return e
	}
	st := &sseStream{srv: s, ident: r.ident, cursor: cursor, origin: s.allowedOrigin(ctx)}
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(st.serve)
	return nil
}

// serve runs the stream until the client goes away, a write fails or the
// server stops.
func (st *sseStream) serve(c net.Conn) {
	s := st.srv
	stop, ok := s.polls.add()
	if !ok {
		return // the server is stopping; fasthttp closes c
	}
	defer s.polls.done()
	st.stop = stop
	st.dev = s.core.HoldHTTPDevice(st.ident)
	defer st.dev.Release()
	st.c = c
	gone := make(chan struct{})
	go func() { // the client sends nothing more: a read that returns means it hung up
		defer close(gone)
		var buf [256]byte
		for {
			if _, err := c.Read(buf[:]); err != nil {
				return
			}
		}
	}()
	defer func() {
		closeConn(c) // ends the reader, which must be done before fasthttp reuses its buffer
		<-gone
	}()

	st.out = append(st.out[:0], "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"+
		"Cache-Control: no-store\r\nX-Accel-Buffering: no\r\nServer: chatd\r\nConnection: close\r\n"...)
	if st.origin != nil {
		st.out = append(st.out, "Access-Control-Allow-Origin: "...)
		st.out = append(st.out, st.origin...)
		st.out = append(st.out, "\r\nVary: Origin\r\n"...)
	}
	st.out = append(st.out, "\r\nretry: 2000\n\n"...)
	hb := time.NewTicker(s.cfg.StreamHeartbeat)
	defer hb.Stop()
	for {
		res, wait, err := st.dev.Read(st.cursor, maxPollEvents)
		if err != nil { // cannot happen: the cursor was checked, and is ours since
			return
		}
		if res.Resync {
			st.out = append(st.out, "event: resync\nid: "...)
			st.out = append(st.out, res.Cursor...)
			st.out = append(st.out, "\ndata: {\"cursor\":"...)
			st.out = strconv.AppendQuote(st.out, res.Cursor)
			st.out = append(st.out, "}\n\n"...)
		}
		if len(res.Events) > 0 {
			// Each event's id is the cursor just after it (epoch.seq+1).
			ep, last, _ := strings.Cut(res.Cursor, ".")
			end, _ := strconv.ParseUint(last, 10, 64)
			seq := end - uint64(len(res.Events))
			for _, ev := range res.Events {
				seq++
				st.out = append(st.out, "id: "...)
				st.out = append(st.out, ep...)
				st.out = append(st.out, '.')
				st.out = strconv.AppendUint(st.out, seq, 10)
				st.out = append(st.out, "\ndata: "...)
				st.out = append(st.out, ev...) // one line: encoded JSON has no raw newline
				st.out = append(st.out, "\n\n"...)
			}
		}
		st.cursor = res.Cursor
		if len(st.out) > 0 && !st.flush() {
			return
		}
		if wait == nil {
			if res.Resync && st.dev.Closed() {
				return // kicked: the client reconnects, and its token is checked again
			}
			continue
		}
		select {
		case <-wait:
		case <-hb.C:
			st.out = append(st.out, ": heartbeat\n\n"...)
		case <-st.stop:
			return
		case <-gone:
			return
		}
	}
}

// flush writes the pending bytes; it reports false when the write failed.
func (st *sseStream) flush() bool {
	st.c.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	_, err := st.c.Write(st.out)
	st.out = st.out[:0]
	if cap(st.out) > maxStreamBuf {
		st.out = nil
	}
	return err == nil
}
