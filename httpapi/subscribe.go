package httpapi

import (
	"bytes"
	"encoding/json"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"chatd/chat"
)

// The live event stream: GET /admin/v1/subscribe?filter=…&filter=…
//
// The handler checks the request like any admin call, then takes the
// connection over from fasthttp (Hijack) and streams on it from its own
// goroutine: one core Subscription, a bounded buffer the core never waits
// on, NDJSON lines (or Server-Sent Events), a heartbeat, and a "dropped"
// line wherever events went missing because the client was too slow.
// fasthttp's write timeout would cut a long response and its shutdown
// would wait for it; on a hijacked connection the stream sets its own
// per-write deadline and ends when the server stops (streamSet).

// Defaults of the stream settings in Config.
const (
	DefaultSubscriberBuffer = 4096
	DefaultMaxSubscribers   = 64
	DefaultStreamHeartbeat  = 15 * time.Second
)

const (
	// maxFilters caps the filter parameters of one stream.
	maxFilters = 32
	// streamWriteTimeout ends a stream whose client has taken nothing for
	// this long (its socket buffers stayed full): it is gone or stuck.
	// Shorter stalls only cost it events, which it is told about.
	streamWriteTimeout = 30 * time.Second
	// streamBatch caps the events coalesced into one write.
	streamBatch = 256
	// droppedEvery is how often a subscriber that never catches up is
	// told about its missed events (one that does is told at once).
	droppedEvery = time.Second
	// streamStopGrace is how long a stream may take to write its last
	// line at shutdown before its connection is closed under it.
	streamStopGrace = time.Second
	// maxStreamBuf is the largest write buffer a stream keeps between
	// batches.
	maxStreamBuf = 1 << 20
)

// fillStream fills the stream settings' zero values.
func (c *Config) fillStream() {
	if c.SubscriberBuffer <= 0 {
		c.SubscriberBuffer = DefaultSubscriberBuffer
	}
	if c.MaxSubscribers <= 0 {
		c.MaxSubscribers = DefaultMaxSubscribers
	}
	if c.StreamHeartbeat <= 0 {
		c.StreamHeartbeat = DefaultStreamHeartbeat
	}
}

// streamSet tracks the running streams so that Serve can end them and
// wait for them: fasthttp forgets a connection once it is hijacked.
type streamSet struct {
	mu     sync.Mutex    // guards closed, stopCh and the wg.Add that registers a stream
	closed bool          // the server is stopping: no new streams
	stopCh chan struct{} // closed by stop; made on first use
	wg     sync.WaitGroup

	active  atomic.Int64  // streams running (checked against MaxSubscribers)
	dropped atomic.Uint64 // events dropped for stream subscribers (metrics)
}

// add registers a stream. It returns the channel closed when the server
// stops, or false if it is already stopping.
func (ss *streamSet) add() (<-chan struct{}, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return nil, false
	}
	if ss.stopCh == nil {
		ss.stopCh = make(chan struct{})
	}
	ss.wg.Add(1)
	ss.active.Add(1)
	return ss.stopCh, true
}

// stopping reports whether stop has been called.
func (ss *streamSet) stopping() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.closed
}

// done unregisters a stream.
func (ss *streamSet) done() {
	ss.active.Add(-1)
	ss.wg.Done()
}

// stop tells every stream to end and refuses new ones.
func (ss *streamSet) stop() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return
	}
	ss.closed = true
	if ss.stopCh != nil {
		close(ss.stopCh)
	}
}

// wait blocks until every stream has ended (at most about
// streamStopGrace after stop).
func (ss *streamSet) wait() { ss.wg.Wait() }

// adminSubscribe starts a live stream: it validates the filters and takes
// the connection over; stream.serve does the rest.
func (s *Server) adminSubscribe(ctx *fasthttp.RequestCtx, _ *reqInfo) error {
	filters, names, e := parseFilters(ctx.QueryArgs())
	if e != nil {
		return e
	}
	if s.streams.stopping() {
		return chat.Errf(chat.CodeUnavailable, "server is shutting down")
	}
	if s.streams.active.Load() >= int64(s.cfg.MaxSubscribers) {
		return chat.Errf(chat.CodeUnavailable, "too many live streams (at most "+
			strconv.Itoa(s.cfg.MaxSubscribers)+"); retry later")
	}
	st := &stream{
		srv:     s,
		filters: filters,
		names:   names,
		sse:     bytes.Contains(bytes.ToLower(ctx.Request.Header.Peek(fasthttp.HeaderAccept)), []byte("text/event-stream")),
		chunked: ctx.Request.Header.IsHTTP11(),
		peer:    s.clientIP(ctx).String(),
	}
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(st.serve)
	return nil
}

// parseFilters reads the filter parameters; none means "all". Any other
// parameter is an error, so a typo does not silently widen the stream.
func parseFilters(args *fasthttp.Args) ([]chat.Filter, []string, *chat.Error) {
	var filters []chat.Filter
	var names []string
	for k, v := range args.All() {
		if string(k) != "filter" {
			return nil, nil, chat.Errf(chat.CodeBadRequest, "unknown query parameter \""+string(k)+"\"; use filter=topic;key=value (repeatable)")
		}
		if len(filters) == maxFilters {
			return nil, nil, chat.Errf(chat.CodeBadRequest, "too many filters (at most "+strconv.Itoa(maxFilters)+")")
		}
		name := string(bytes.TrimSpace(v))
		if name == "" {
			return nil, nil, chat.Errf(chat.CodeBadRequest, "empty filter; use e.g. filter=all or filter=message;uid=alice")
		}
		f, err := chat.ParseFilter(name)
		if err != nil {
			msg := err.Error()
			if ce, ok := err.(*chat.Error); ok {
				msg = ce.Message
			}
			return nil, nil, chat.Errf(chat.CodeBadRequest, "filter \""+name+"\": "+msg)
		}
		filters = append(filters, f)
		names = append(names, name)
	}
	if len(filters) == 0 {
		filters, names = []chat.Filter{{Topic: "all"}}, []string{"all"}
	}
	return filters, names, nil
}

// stream is one live stream. It is built by the request handler and then
// owned by the goroutine running serve.
type stream struct {
	srv     *Server
	filters []chat.Filter
	names   []string
	sse     bool // text/event-stream instead of NDJSON
	chunked bool // HTTP/1.1: chunked body (else the body ends with the connection)
	peer    string

	c           net.Conn
	lines       []byte // lines of the batch being built
	out         []byte // the next write: framing and lines
	lastDropped time.Time
	sent, lost  uint64 // events written, events reported dropped
}

// Stream control lines, besides the events themselves.
const (
	topicHello     = "hello"
	topicHeartbeat = "heartbeat"
	topicDropped   = "dropped"
	topicBye       = "bye"
)

// streamHello is the first line of a stream.
type streamHello struct {
	Topic      string   `json:"topic"`
	Time       int64    `json:"time"`
	ServerTime int64    `json:"server_time"`
	Version    string   `json:"version"`
	Filters    []string `json:"filters"`
	Buffer     int      `json:"buffer"`
	Heartbeat  float64  `json:"heartbeat_seconds"`
}

// serve runs on the hijacked connection until the client goes away, a
// write fails or the server stops. c must not be used after it returns.
func (st *stream) serve(c net.Conn) {
	s := st.srv
	stop, ok := s.streams.add()
	if !ok {
		return // the server is stopping; fasthttp closes c
	}
	defer s.streams.done()
	sub := s.core.Subscribe(st.filters, s.cfg.SubscriberBuffer)
	defer func() {
		sub.Close()
		s.streams.dropped.Add(sub.Dropped()) // dropped after the last report
	}()
	st.c = c

	// The client sends nothing after its request: a read that returns
	// means it hung up.
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		var buf [256]byte
		for {
			if _, err := c.Read(buf[:]); err != nil {
				return
			}
		}
	}()
	finished := make(chan struct{})
	go st.watch(stop, finished)
	defer func() {
		close(finished)
		closeConn(c) // ends the reader, which must be done before fasthttp reuses its buffer
		<-gone
	}()

	s.log.Info().Str("peer", st.peer).Strs("filters", st.names).Bool("sse", st.sse).Msg("http api: live stream opened")
	why := st.run(sub, stop, gone)
	s.log.Info().Str("peer", st.peer).Uint64("events", st.sent).Uint64("dropped", st.lost).Str("why", why).
		Msg("http api: live stream closed")
}

// watch closes the connection under a write that is still stuck
// streamStopGrace after the server began to stop (a client that does not
// read would otherwise hold the shutdown for streamWriteTimeout).
func (st *stream) watch(stop, finished <-chan struct{}) {
	select {
	case <-finished:
		return
	case <-stop:
	}
	t := time.NewTimer(streamStopGrace)
	defer t.Stop()
	select {
	case <-finished:
	case <-t.C:
		closeConn(st.c)
	}
}

// closeConn closes a hijacked connection (whose own Close is a no-op:
// fasthttp closes it after the hijack handler returns). Closing is the
// portable way to end a blocked Read or Write from another goroutine: a
// new deadline does not reach an in-progress call on every net.Conn
// (fasthttp's in-memory pipes).
func closeConn(c net.Conn) {
	if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
		u.UnsafeConn().Close()
		return
	}
	c.Close()
}

// run writes the stream and returns why it ended.
func (st *stream) run(sub *chat.Subscription, stop, gone <-chan struct{}) string {
	cfg := &st.srv.cfg
	st.out = st.appendHead(st.out[:0])
	if st.sse {
		st.lines = append(st.lines, "retry: 2000\n\n"...)
	}
	now := time.Now().UnixMilli()
	hello, _ := json.Marshal(streamHello{Topic: topicHello, Time: now, ServerTime: now, Version: cfg.Version,
		Filters: st.names, Buffer: cfg.SubscriberBuffer, Heartbeat: cfg.StreamHeartbeat.Seconds()})
	st.appendLine(hello)
	if !st.flush() {
		return "write failed"
	}
	hb := time.NewTicker(cfg.StreamHeartbeat)
	defer hb.Stop()
	for {
		select {
		case e := <-sub.C:
			st.appendEvent(&e)
		batch:
			for n := 1; n < streamBatch; n++ {
				select {
				case e = <-sub.C:
					st.appendEvent(&e)
				default:
					break batch
				}
			}
			// Drops happen while the buffer is full, after the events
			// still in it: once it is drained, this is where they belong.
			if len(sub.C) == 0 || time.Since(st.lastDropped) >= droppedEvery {
				st.appendDropped(sub)
			}
		case <-hb.C:
			st.appendDropped(sub)
			st.appendControl(topicHeartbeat, 0, "")
		case <-stop:
			st.appendDropped(sub)
			st.appendControl(topicBye, 0, "server shutting down")
			if st.flush() && st.chunked {
				st.writeRaw([]byte("0\r\n\r\n"))
			}
			return "server stopping"
		case <-gone:
			return "client went away"
		}
		if !st.flush() {
			return "write failed"
		}
	}
}

// appendHead appends the response head.
func (st *stream) appendHead(b []byte) []byte {
	if st.chunked {
		b = append(b, "HTTP/1.1 200 OK\r\n"...)
	} else {
		b = append(b, "HTTP/1.0 200 OK\r\n"...)
	}
	if st.sse {
		b = append(b, "Content-Type: text/event-stream; charset=utf-8\r\n"...)
	} else {
		b = append(b, "Content-Type: application/x-ndjson\r\n"...)
	}
	b = append(b, "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\nServer: chatd\r\nConnection: close\r\nDate: "...)
	b = fasthttp.AppendHTTPDate(b, time.Now())
	b = append(b, "\r\n"...)
	if st.chunked {
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	return append(b, "\r\n"...)
}

// appendLine adds one JSON document as a line (NDJSON) or an event (SSE).
func (st *stream) appendLine(doc []byte) {
	if st.sse {
		st.lines = append(st.lines, "data: "...)
		st.lines = append(st.lines, doc...)
		st.lines = append(st.lines, '\n', '\n')
		return
	}
	st.lines = append(st.lines, doc...)
	st.lines = append(st.lines, '\n')
}

func (st *stream) appendEvent(e *chat.Event) {
	doc, err := json.Marshal(e)
	if err != nil { // cannot happen: the core publishes valid JSON content
		st.srv.log.Error().Err(err).Str("topic", e.Topic).Msg("http api: live stream: event not encodable")
		return
	}
	st.appendLine(doc)
	st.sent++
}

// appendDropped reports the events sub dropped since the last report.
func (st *stream) appendDropped(sub *chat.Subscription) {
	n := sub.Dropped()
	if n == 0 {
		return
	}
	st.srv.streams.dropped.Add(n)
	st.lost += n
	st.lastDropped = time.Now()
	st.appendControl(topicDropped, n, "")
}

// appendControl adds {"topic":…,"time":…[,"count":n][,"reason":…]}.
func (st *stream) appendControl(topic string, count uint64, reason string) {
	var b [160]byte
	doc := append(b[:0], `{"topic":"`...)
	doc = append(doc, topic...)
	doc = append(doc, `","time":`...)
	doc = strconv.AppendInt(doc, time.Now().UnixMilli(), 10)
	if count > 0 {
		doc = append(doc, `,"count":`...)
		doc = strconv.AppendUint(doc, count, 10)
	}
	if reason != "" {
		doc = append(doc, `,"reason":`...)
		doc = strconv.AppendQuote(doc, reason) // plain ASCII reasons: JSON-compatible
	}
	doc = append(doc, '}')
	st.appendLine(doc)
}

// flush writes the pending head and lines as one write (one chunk when
// chunked). It reports false when the write failed.
func (st *stream) flush() bool {
	if len(st.lines) > 0 {
		if st.chunked {
			st.out = strconv.AppendInt(st.out, int64(len(st.lines)), 16)
			st.out = append(st.out, '\r', '\n')
			st.out = append(st.out, st.lines...)
			st.out = append(st.out, '\r', '\n')
		} else {
			st.out = append(st.out, st.lines...)
		}
		st.lines = st.lines[:0]
	}
	if len(st.out) == 0 {
		return true
	}
	ok := st.writeRaw(st.out)
	st.out = st.out[:0]
	if cap(st.out) > maxStreamBuf {
		st.out = nil
	}
	if cap(st.lines) > maxStreamBuf {
		st.lines = nil
	}
	return ok
}

// writeRaw writes b with the stream's write deadline. Only the stream's
// goroutine sets write deadlines (fasthttp's in-memory test pipes do not
// allow setting them concurrently with a write).
func (st *stream) writeRaw(b []byte) bool {
	st.c.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	_, err := st.c.Write(b)
	return err == nil
}
