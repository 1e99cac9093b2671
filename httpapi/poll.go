package httpapi

import (
	"bytes"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"chatd/chat"
)

// Events over HTTP, for clients without a WebSocket (docs/http-api.md,
// "Events over HTTP"):
//
//   - GET /v1/events?cursor=&timeout=&limit=  long-poll
//   - GET /v1/events/stream                   Server-Sent Events (sse.go)
//   - GET /v1/recv?cursor=&limit=             the new messages, at once
//
// All three read the user's HTTP device (chat/httpdevice.go): a ring of
// the events the user's WebSocket devices receive, read from a cursor.
//
// fasthttp serves a request on a worker goroutine that blocks until the
// handler returns; it has no way to park a request without one. A
// long-poll or a stream therefore takes its connection over (Hijack),
// which hands the connection's admission slot back (admit.go: waiting
// requests do not count against http_max_conns), and waits on a goroutine
// of its own, capped by Config.MaxPolls for long-polls and streams
// together. docs/operations.md records what 5,000 waiting long-polls
// cost (TestLongPollMemory).

// Defaults of the long-poll settings in Config.
const (
	DefaultMaxPolls     = 5000
	DefaultPollsPerUser = 8
	DefaultPollTimeout  = 25 * time.Second
	// maxPollTimeout caps the timeout a client may ask for.
	maxPollTimeout = 120 * time.Second
	// maxPollEvents caps the events of one long-poll or recv answer.
	maxPollEvents = 500
)

// pollSet counts and ends the waiting long-polls and event streams.
type pollSet struct {
	streamSet               // registration, stop at shutdown, wait
	refused   atomic.Uint64 // requests refused over MaxPolls
}

// pollsFull reports (as an error) that MaxPolls requests already wait.
// The handler checks it; the hijacked goroutine then registers itself
// (addPoll), so that nothing is counted for a connection fasthttp fails
// to hand over (a few requests may pass the check together: the cap is
// approximate by that much, as for live streams).
func (s *Server) pollsFull(d *chat.HTTPDevice) *chat.Error {
	if s.polls.stopping() {
		return errStopping
	}
	if d.Holders() > s.cfg.MaxPollsPerUser { // the caller's own hold counts one
		s.polls.refused.Add(1)
		return chat.Errf(chat.CodeRateLimited, "too many waiting long-polls and event streams for this user (at most "+
			strconv.Itoa(s.cfg.MaxPollsPerUser)+"); close one first")
	}
	if s.polls.active.Load() >= int64(s.cfg.MaxPolls) {
		s.polls.refused.Add(1)
		return chat.Errf(chat.CodeUnavailable, "too many waiting long-polls and event streams (at most "+
			strconv.Itoa(s.cfg.MaxPolls)+"); retry later")
	}
	return nil
}

var errStopping = chat.Errf(chat.CodeUnavailable, "server is shutting down")

// pollArgs reads cursor and limit.
func pollArgs(ctx *fasthttp.RequestCtx) (cursor string, limit int, e *chat.Error) {
	args := ctx.QueryArgs()
	cursor = string(args.Peek("cursor"))
	limit = maxPollEvents
	if v := args.Peek("limit"); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 1 || n > maxPollEvents {
			return "", 0, chat.Errf(chat.CodeBadRequest, "limit must be 1-"+strconv.Itoa(maxPollEvents))
		}
		limit = n
	}
	return cursor, limit, nil
}

// userEvents answers a long-poll: at once when events follow the cursor
// (or it needs a resync), else when one arrives or the timeout passes
// (then with no events and the same cursor).
func (s *Server) userEvents(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	cursor, limit, e := pollArgs(ctx)
	if e != nil {
		return e
	}
	timeout := s.cfg.PollTimeout
	if v := ctx.QueryArgs().Peek("timeout"); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 0 || time.Duration(n)*time.Second > maxPollTimeout {
			return chat.Errf(chat.CodeBadRequest, "timeout must be 0-"+strconv.Itoa(int(maxPollTimeout/time.Second))+" seconds")
		}
		timeout = time.Duration(n) * time.Second
	}
	d := s.core.HoldHTTPDevice(r.ident)
	defer d.Release() // held again by the waiting goroutine
	res, wait, err := d.Read(cursor, limit)
	// No cursor: answer the starting cursor at once (the client loads its
	// state with sessions + sync, then polls from it).
	if err != nil || wait == nil || timeout == 0 || cursor == "" {
		if err != nil {
			return err
		}
		writeEvents(ctx, &res)
		return nil
	}
	if e := s.pollsFull(d); e != nil {
		return e
	}
	lp := &longPoll{srv: s, ident: r.ident, cursor: cursor, limit: limit, timeout: timeout, origin: s.allowedOrigin(ctx)}
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(lp.serve)
	return nil
}

// longPoll is one waiting long-poll, owned by the goroutine running serve.
type longPoll struct {
	srv     *Server
	ident   chat.Identity
	cursor  string
	limit   int
	timeout time.Duration
	origin  []byte // the allowed Origin to echo, or nil
}

// serve waits on the hijacked connection and writes the answer. The
// connection's resources (its count in MaxPolls, its hold on the user's
// device) are taken here, so that a connection fasthttp fails to hand
// over holds none.
func (lp *longPoll) serve(c net.Conn) {
	s := lp.srv
	stop, ok := s.polls.add()
	if !ok {
		return // the server is stopping; fasthttp closes c
	}
	defer s.polls.done()
	d := s.core.HoldHTTPDevice(lp.ident)
	defer d.Release()
	res, wait, err := d.Read(lp.cursor, lp.limit)
	if err == nil && wait != nil {
		t := time.NewTimer(lp.timeout)
		select {
		case <-wait:
		case <-t.C:
		case <-stop:
		}
		t.Stop()
		res, _, err = d.Read(lp.cursor, lp.limit)
	}
	var ctx fasthttp.RequestCtx // only its Response is used
	if err != nil {
		writeError(&ctx, err.(*chat.Error))
	} else {
		writeEvents(&ctx, &res)
	}
	if lp.origin != nil {
		setCORS(&ctx.Response.Header, lp.origin)
	}
	ctx.Response.SetConnectionClose()
	c.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	ctx.Response.WriteTo(c)
}

// writeEvents answers {"ok":true,"data":{"events":[…],"cursor":…,"resync":…}}.
func writeEvents(ctx *fasthttp.RequestCtx, res *chat.HTTPEvents) {
	n := 64 + len(res.Cursor)
	for _, ev := range res.Events {
		n += len(ev) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"ok":true,"data":{"events":[`...)
	for i, ev := range res.Events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, ev...)
	}
	b = append(b, `],"cursor":`...)
	b = strconv.AppendQuote(b, res.Cursor) // hex and digits: JSON-compatible
	b = append(b, `,"resync":`...)
	b = strconv.AppendBool(b, res.Resync)
	b = append(b, "}}"...)
	writeRaw(ctx, b)
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
}

var messageEventPrefix = []byte(`{"event":"message","data":`)

// userRecv answers the messages among the events after the cursor, at
// once (the short-poll IM's Message/Recv): {"messages":[…],"cursor":…,
// "resync":…}. Other events are passed over (a client that wants them
// long-polls /v1/events).
func (s *Server) userRecv(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	cursor, limit, e := pollArgs(ctx)
	if e != nil {
		return e
	}
	d := s.core.HoldHTTPDevice(r.ident)
	res, _, err := d.Read(cursor, limit)
	d.Release()
	if err != nil {
		return err
	}
	b := make([]byte, 0, 256)
	b = append(b, `{"ok":true,"data":{"messages":[`...)
	n := 0
	for _, ev := range res.Events {
		if !bytes.HasPrefix(ev, messageEventPrefix) {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, ev[len(messageEventPrefix):len(ev)-1]...) // the message object
		n++
	}
	b = append(b, `],"cursor":`...)
	b = strconv.AppendQuote(b, res.Cursor)
	b = append(b, `,"resync":`...)
	b = strconv.AppendBool(b, res.Resync)
	b = append(b, "}}"...)
	writeRaw(ctx, b)
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	return nil
}

// ---- CORS

// corsAllowHeaders are the request headers a browser client may send.
const corsAllowHeaders = "Authorization, Content-Type, X-Chatd-App, Last-Event-ID"

// allowedOrigin returns the request's Origin when Config.CORSOrigins
// allows it (nil otherwise, and for requests without one).
func (s *Server) allowedOrigin(ctx *fasthttp.RequestCtx) []byte {
	o := ctx.Request.Header.Peek("Origin")
	if len(o) == 0 {
		return nil
	}
	for _, a := range s.cfg.CORSOrigins {
		if a == "*" || a == string(o) {
			return o
		}
	}
	return nil
}

// cors adds the CORS headers to the answer of a browser client's request
// from an allowed origin.
func (s *Server) cors(ctx *fasthttp.RequestCtx) {
	if o := s.allowedOrigin(ctx); o != nil {
		setCORS(&ctx.Response.Header, o)
	}
}

func setCORS(h *fasthttp.ResponseHeader, origin []byte) {
	h.SetBytesV("Access-Control-Allow-Origin", origin)
	h.Add(fasthttp.HeaderVary, "Origin")
	h.Set("Access-Control-Expose-Headers", "Content-Length, Content-Type, ETag, Content-Range, Accept-Ranges, Content-Disposition")
}

// preflight answers a CORS preflight (OPTIONS) for a user endpoint: 204
// with what may be sent, or 403 when the origin is not allowed.
func (s *Server) preflight(ctx *fasthttp.RequestCtx, ep *endpoint) {
	o := s.allowedOrigin(ctx)
	if o == nil {
		writeError(ctx, chat.Errf(chat.CodeForbidden, "origin \""+string(ctx.Request.Header.Peek("Origin"))+
			"\" is not allowed (http_cors_origins)"))
		return
	}
	setCORS(&ctx.Response.Header, o)
	ctx.Response.Header.Set("Access-Control-Allow-Methods", ep.allow)
	ctx.Response.Header.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	ctx.Response.Header.Set("Access-Control-Max-Age", "600")
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}
