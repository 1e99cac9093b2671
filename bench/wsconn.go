package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	"chatd/wsproto"
)

// connCfg is what every client connection of a run shares. Read-only once
// the run starts.
type connCfg struct {
	clk       clock
	tr        *traffic
	window    int           // sends awaiting a reply per connection; more wait in the backlog
	text      string        // the message text (Options.Size bytes)
	runTag    string        // makes cids unique across runs
	maxFrame  int           // largest server frame accepted
	callLimit time.Duration // how long a cold request waits for its reply
}

// Connection errors.
var (
	errConnClosed = errors.New("connection closed")
	errCallTime   = errors.New("no reply in time")
)

// reqKind is what a pending request is.
type reqKind uint8

const (
	reqSend reqKind = iota + 1 // hot: a message send; the reader records its ack
	reqCall                    // cold: the reader hands a copy of the reply to a waiter
)

type pendingReq struct {
	kind reqKind
	at   int64       // reqSend: intended run time
	sent int64       // reqSend: run time it was written (just before the write)
	ch   chan []byte // reqCall: gets the reply; closed when the connection ends
}

type queuedSend struct {
	at      int64
	session uint64
}

// hdrRoom is reserved before a payload being built so the frame header (at
// most 14 bytes for a masked client frame) can be put in front without
// moving the payload.
const hdrRoom = wsproto.MaxHeaderLen

// initialReadBuf is a connection's starting read buffer: a few message
// events fit; larger frames (sync pages) grow it.
const initialReadBuf = 2 << 10

// wsConn is one client connection. opener.open creates it (dial,
// handshake and login on the caller's goroutine); start then hands reading
// to its own goroutine.
type wsConn struct {
	nc     net.Conn
	cfg    *connCfg
	user   int    // index of its user in the run
	uid    []byte // its user's uid, to recognise its own messages
	serial uint64 // run-unique connection number, part of every cid

	// Read side: owned by the reader goroutine (before start, by the
	// goroutine in opener.open).
	rb     []byte
	rs, re int    // unread bytes are rb[rs:re]
	frag   []byte // fragmented message being reassembled
	inFrag bool

	wmu      sync.Mutex // guards every field below
	wb       []byte     // frame being built and written
	nextID   uint64
	pending  map[uint64]pendingReq
	inflight int          // pending sends
	backlog  []queuedSend // sends waiting for a free window slot
	bhead    int          // backlog[bhead:] is waiting
	closed   bool         // no more writes: closing, or the socket failed
	closing  bool         // chatbench initiated the close
	mask     uint64       // xorshift state for mask keys
	started  bool         // the reader goroutine runs

	done chan struct{} // closed when the reader goroutine has exited
}

func newWSConn(nc net.Conn, cfg *connCfg, user int, uid string, serial uint64) *wsConn {
	return &wsConn{
		nc: nc, cfg: cfg, user: user, uid: []byte(uid), serial: serial,
		rb: make([]byte, initialReadBuf), wb: make([]byte, 0, 256),
		mask: rand.Uint64() | 1, done: make(chan struct{}),
	}
}

// ---- frames out

// nextMaskKey returns a fresh mask key. Called with wmu held (or before
// start).
func (c *wsConn) nextMaskKey() [4]byte {
	x := c.mask
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	c.mask = x
	var k [4]byte
	binary.LittleEndian.PutUint32(k[:], uint32(x>>16))
	return k
}

// begin starts a frame in wb. Called with wmu held.
func (c *wsConn) begin() {
	if cap(c.wb) < hdrRoom {
		c.wb = make([]byte, 0, 256)
	}
	c.wb = c.wb[:hdrRoom]
}

// finish masks the payload built after begin, puts the header in front and
// returns the whole frame (aliasing wb). Called with wmu held.
func (c *wsConn) finish(op wsproto.Opcode) []byte {
	p := c.wb[hdrRoom:]
	var hb [wsproto.MaxHeaderLen]byte
	h := wsproto.AppendHeader(hb[:0], true, 0, op, len(p))
	h[1] |= 0x80 // client frames are masked (RFC 6455 §5.3)
	key := c.nextMaskKey()
	h = append(h, key[:]...)
	wsproto.MaskBytes(key, 0, p)
	start := hdrRoom - len(h)
	copy(c.wb[start:], h)
	return c.wb[start:]
}

// write sends one frame. Called with wmu held. A failed write marks the
// connection closed and closes the socket, which ends the reader.
func (c *wsConn) write(frame []byte) error {
	if _, err := c.nc.Write(frame); err != nil {
		c.closed = true
		c.nc.Close()
		return err
	}
	return nil
}

// send sends one text message to session, intended for run time at, or
// queues it when the connection already has window sends unanswered.
// errConnClosed means the message was not sent.
func (c *wsConn) send(at int64, session uint64) error {
	c.wmu.Lock()
	if c.closed {
		c.wmu.Unlock()
		return errConnClosed
	}
	if c.inflight >= c.cfg.window {
		c.backlog = append(c.backlog, queuedSend{at: at, session: session})
		c.wmu.Unlock()
		return nil
	}
	err := c.writeSendLocked(at, session)
	c.wmu.Unlock()
	return err
}

// writeSendLocked encodes and writes one send. Called with wmu held.
func (c *wsConn) writeSendLocked(at int64, session uint64) error {
	c.nextID++
	id := c.nextID
	c.begin()
	b := c.wb
	b = append(b, `{"id":`...)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, `,"action":"send","session_id":`...)
	b = strconv.AppendUint(b, session, 10)
	b = append(b, `,"type":"text","content":{"t":`...)
	b = strconv.AppendInt(b, at, 10)
	b = append(b, `,"r":"`...)
	b = append(b, c.cfg.runTag...)
	b = append(b, `","text":"`...)
	b = append(b, c.cfg.text...)
	b = append(b, `"},"cid":"`...)
	b = append(b, c.cfg.runTag...)
	b = append(b, '.')
	b = strconv.AppendUint(b, c.serial, 36)
	b = append(b, '.')
	b = strconv.AppendUint(b, id, 36)
	b = append(b, `"}`...)
	c.wb = b
	if c.pending == nil {
		c.pending = make(map[uint64]pendingReq, 16)
	}
	frame := c.finish(wsproto.OpText)
	now := c.cfg.clk.now()
	c.pending[id] = pendingReq{kind: reqSend, at: at, sent: now}
	c.inflight++
	c.cfg.tr.lag.Record(c.user, time.Duration(now-at))
	if err := c.write(frame); err != nil {
		delete(c.pending, id)
		c.inflight--
		return errConnClosed
	}
	c.cfg.tr.sent.Add(1)
	return nil
}

// writeControl writes a control frame (pong, close). Called with wmu held.
func (c *wsConn) writeControl(op wsproto.Opcode, payload []byte) error {
	c.begin()
	c.wb = append(c.wb, payload...)
	return c.write(c.finish(op))
}

// call sends one cold request (body is a JSON object without "id") and
// returns the reply frame's payload (a private copy).
func (c *wsConn) call(ctx context.Context, body []byte) ([]byte, error) {
	ch := make(chan []byte, 1)
	c.wmu.Lock()
	if c.closed {
		c.wmu.Unlock()
		return nil, errConnClosed
	}
	c.nextID++
	id := c.nextID
	c.begin()
	c.wb = append(c.wb, `{"id":`...)
	c.wb = strconv.AppendUint(c.wb, id, 10)
	if len(body) > 2 {
		c.wb = append(c.wb, ',')
	}
	c.wb = append(c.wb, body[1:]...)
	if c.pending == nil {
		c.pending = make(map[uint64]pendingReq, 16)
	}
	c.pending[id] = pendingReq{kind: reqCall, ch: ch}
	err := c.write(c.finish(wsproto.OpText))
	c.wmu.Unlock()
	if err != nil {
		return nil, errConnClosed
	}
	t := time.NewTimer(c.cfg.callLimit)
	defer t.Stop()
	select {
	case p, ok := <-ch:
		if !ok {
			return nil, errConnClosed
		}
		return p, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, errCallTime
	}
}

// replyEnvelope is a decoded cold reply.
type replyEnvelope struct {
	OK    bool            `json:"ok"`
	Data  json.RawMessage `json:"data"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// ServerError is an action answered with ok false.
type ServerError struct {
	Code    string
	Message string
}

func (e *ServerError) Error() string { return e.Code + ": " + e.Message }

// callData runs call and decodes the reply's data into out (nil: ignore).
func (c *wsConn) callData(ctx context.Context, body []byte, out any) error {
	p, err := c.call(ctx, body)
	if err != nil {
		return err
	}
	return decodeReply(p, out)
}

func decodeReply(p []byte, out any) error {
	var env replyEnvelope
	if err := json.Unmarshal(p, &env); err != nil {
		return errors.New("bad reply: " + err.Error())
	}
	if !env.OK {
		if env.Error == nil {
			return errors.New("reply with ok false and no error")
		}
		return &ServerError{Code: env.Error.Code, Message: env.Error.Message}
	}
	if out != nil {
		if err := json.Unmarshal(env.Data, out); err != nil {
			return errors.New("bad reply data: " + err.Error())
		}
	}
	return nil
}

// ---- frames in

// readFrame returns the next complete frame. Its payload aliases rb and
// is valid until the next readFrame. Called by the reading goroutine only.
func (c *wsConn) readFrame() (wsproto.Frame, error) {
	for {
		if c.re > c.rs {
			f, n, err := wsproto.Parse(c.rb[c.rs:c.re], c.cfg.maxFrame)
			if err == nil {
				c.rs += n
				if f.Masked {
					return f, errors.New("protocol error: masked server frame")
				}
				return f, nil
			}
			if err != wsproto.ErrShortFrame {
				return f, errors.New("protocol error: " + err.Error())
			}
		}
		c.makeRoom()
		n, err := c.nc.Read(c.rb[c.re:])
		c.re += n
		if err != nil && n == 0 {
			return wsproto.Frame{}, err
		}
	}
}

// makeRoom compacts the read buffer and grows it when a frame does not fit.
func (c *wsConn) makeRoom() {
	if c.rs == c.re {
		c.rs, c.re = 0, 0
		if len(c.rb) > 64<<10 { // drop a buffer grown for one big frame
			c.rb = make([]byte, initialReadBuf)
		}
		return
	}
	if c.rs > 0 && len(c.rb)-c.re < 512 {
		c.re = copy(c.rb, c.rb[c.rs:c.re])
		c.rs = 0
	}
	if c.re == len(c.rb) {
		nb := make([]byte, 2*len(c.rb))
		c.re = copy(nb, c.rb[c.rs:c.re])
		c.rs = 0
		c.rb = nb
	}
}

// nextMessage returns the next text message, answering pings on the way.
// A close frame from the server ends it with a *closedByServer error.
// Called by the reading goroutine only.
func (c *wsConn) nextMessage() ([]byte, error) {
	for {
		f, err := c.readFrame()
		if err != nil {
			return nil, err
		}
		switch f.Op {
		case wsproto.OpText, wsproto.OpBinary:
			if f.Fin {
				c.inFrag = false
				return f.Payload, nil
			}
			c.frag = append(c.frag[:0], f.Payload...)
			c.inFrag = true
		case wsproto.OpContinuation:
			if !c.inFrag {
				return nil, errors.New("protocol error: continuation without a start")
			}
			c.frag = append(c.frag, f.Payload...)
			if f.Fin {
				c.inFrag = false
				return c.frag, nil
			}
		case wsproto.OpPing:
			c.wmu.Lock()
			if !c.closed {
				c.writeControl(wsproto.OpPong, f.Payload)
			}
			c.wmu.Unlock()
		case wsproto.OpClose:
			e := &closedByServer{code: 1005}
			if len(f.Payload) >= 2 {
				e.code = int(binary.BigEndian.Uint16(f.Payload))
				e.reason = string(f.Payload[2:])
			}
			c.wmu.Lock()
			if !c.closed {
				c.closed = true
				var cb [2]byte
				binary.BigEndian.PutUint16(cb[:], uint16(wsproto.CloseNormal))
				c.writeControl(wsproto.OpClose, cb[:])
			}
			c.wmu.Unlock()
			return nil, e
		}
	}
}

// closedByServer is a close frame from the server.
type closedByServer struct {
	code   int
	reason string
}

func (e *closedByServer) Error() string {
	if e.reason == "" {
		return "closed by server: " + strconv.Itoa(e.code)
	}
	return "closed by server: " + strconv.Itoa(e.code) + " " + e.reason
}

// start hands the connection to its reader goroutine.
func (c *wsConn) start() {
	c.wmu.Lock()
	c.started = true
	c.wmu.Unlock()
	go c.readLoop()
}

func (c *wsConn) readLoop() {
	var err error
	for {
		var p []byte
		p, err = c.nextMessage()
		if err != nil {
			break
		}
		c.dispatch(p)
	}
	c.nc.Close()
	c.wmu.Lock()
	expected := c.closing
	c.closed = true
	pend := c.pending
	c.pending = nil
	unsent := len(c.backlog) - c.bhead
	c.backlog, c.bhead = nil, 0
	c.inflight = 0
	c.wmu.Unlock()
	for _, p := range pend {
		if p.kind == reqCall {
			close(p.ch)
		} else {
			c.cfg.tr.onSendFailed(c, "closed")
		}
	}
	c.cfg.tr.onDisconnect(c, disconnectCause(err), expected, unsent)
	close(c.done)
}

// disconnectCause names why a reader stopped.
func disconnectCause(err error) string {
	var cs *closedByServer
	switch {
	case errors.As(err, &cs):
		return cs.Error()
	case errors.Is(err, io.EOF):
		return "closed by server without a close frame"
	case errors.Is(err, net.ErrClosed):
		return "closed locally"
	}
	return classifyNetErr(err)
}

// dispatch handles one text message from the server. Called by the
// reader goroutine; p dies when it returns.
func (c *wsConn) dispatch(p []byte) {
	if id, rest, ok := replyID(p); ok {
		c.onReply(id, rest, p)
		return
	}
	if m, ok := parseMessage(p); ok {
		c.cfg.tr.onMessage(c, &m)
	} else if m, ok := parseMessageEvent(p, prefixBcast); ok {
		c.cfg.tr.onMessage(c, &m) // a broadcast (from ""), counted as a delivery
	}
	// Other events (presence, group changes…) are not measured.
}

func (c *wsConn) onReply(id uint64, rest, whole []byte) {
	c.wmu.Lock()
	pr, found := c.pending[id]
	if found {
		delete(c.pending, id)
		if pr.kind == reqSend {
			c.inflight--
			if c.bhead < len(c.backlog) && !c.closed {
				q := c.backlog[c.bhead]
				c.bhead++
				switch {
				case c.bhead == len(c.backlog):
					c.backlog, c.bhead = c.backlog[:0], 0
				case c.bhead >= 1024 && 2*c.bhead >= len(c.backlog):
					// A backlog that never empties (a server behind for
					// good) must not keep every send it ever queued.
					n := copy(c.backlog, c.backlog[c.bhead:])
					c.backlog, c.bhead = c.backlog[:n], 0
				}
				if c.writeSendLocked(q.at, q.session) != nil {
					c.cfg.tr.unsent.Add(1)
				}
			}
		}
	}
	c.wmu.Unlock()
	if !found {
		return
	}
	if pr.kind == reqCall {
		pr.ch <- bytes.Clone(whole)
		return
	}
	if bytes.HasPrefix(rest, []byte(`,"ok":true`)) {
		seq, _ := fieldUint(rest, keySeq)
		session, _ := fieldUint(rest, keySessionID)
		c.cfg.tr.onAck(c, pr.at, pr.sent, session, seq, bytes.Contains(rest, keyDuplicate))
		return
	}
	code, ok := fieldString(rest, keyCode)
	if !ok {
		code = []byte("unreadable error")
	}
	c.cfg.tr.onSendFailed(c, string(code))
}

// close ends the connection from the client side: a close frame (1000),
// then, once the server has answered or wait has passed, the socket is
// closed. Safe to call more than once and from any goroutine.
func (c *wsConn) close(wait time.Duration) {
	c.wmu.Lock()
	started := c.started
	if !c.closed {
		c.closed = true
		c.closing = true
		var cb [2]byte
		binary.BigEndian.PutUint16(cb[:], uint16(wsproto.CloseNormal))
		c.writeControl(wsproto.OpClose, cb[:])
	}
	c.wmu.Unlock()
	if started && wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-c.done:
		case <-t.C:
		}
		t.Stop()
	}
	c.nc.Close()
}

// ---- opening

// handshake performs the WebSocket upgrade on a fresh socket. Bytes the
// server sent after its response stay in the read buffer.
func (c *wsConn) handshake(host, path string) error {
	key := newWSKey(rand.Uint64(), rand.Uint64())
	req := appendUpgradeRequest(make([]byte, 0, 256), host, path, key[:])
	if _, err := c.nc.Write(req); err != nil {
		return err
	}
	for {
		if end := bytes.Index(c.rb[:c.re], crlfCRLF); end >= 0 {
			c.rs = end + 4
			want := acceptFor(key)
			return checkUpgrade(c.rb[:end+2], want[:])
		}
		if c.re == len(c.rb) {
			return errors.New("response header too long")
		}
		n, err := c.nc.Read(c.rb[c.re:])
		c.re += n
		if err != nil && n == 0 {
			return err
		}
	}
}

// crlfCRLF ends an HTTP head.
var crlfCRLF = []byte("\r\n\r\n")

// upgradeError is a handshake answered with something other than 101.
type upgradeError struct{ status int }

func (e *upgradeError) Error() string { return "HTTP " + strconv.Itoa(e.status) }

// checkUpgrade validates the server's handshake response head (status line
// and header lines, each ending in CRLF): status 101 and the
// Sec-WebSocket-Accept value want. It does not allocate unless it fails.
func checkUpgrade(head []byte, want []byte) error {
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	// "HTTP/1.1 101 Switching Protocols"
	_, after, ok := bytes.Cut(line, []byte(" "))
	if !ok || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return errors.New("bad response")
	}
	status, _, ok := leadingUint(after)
	if !ok {
		return errors.New("bad response")
	}
	if status != 101 {
		return &upgradeError{status: int(status)}
	}
	for len(rest) > 0 {
		var h []byte
		h, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, val, ok := bytes.Cut(h, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(name), []byte("Sec-WebSocket-Accept")) {
			if !bytes.Equal(bytes.TrimSpace(val), want) {
				return errors.New("wrong Sec-WebSocket-Accept")
			}
			return nil
		}
	}
	return errors.New("no Sec-WebSocket-Accept")
}

// loginSync logs in before the reader goroutine starts: it writes the
// login action and reads until its reply, answering pings and skipping
// events. A refusal is a *ServerError.
func (c *wsConn) loginSync(app, token string) error {
	c.wmu.Lock()
	c.nextID++
	id := c.nextID
	c.begin()
	b := c.wb
	b = append(b, `{"id":`...)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, `,"action":"login","app":`...)
	b = appendJSONString(b, app)
	b = append(b, `,"token":`...)
	b = appendJSONString(b, token)
	b = append(b, '}')
	c.wb = b
	err := c.write(c.finish(wsproto.OpText))
	c.wmu.Unlock()
	if err != nil {
		return err
	}
	for {
		p, err := c.nextMessage()
		if err != nil {
			return err
		}
		rid, rest, ok := replyID(p)
		if !ok || rid != id {
			continue
		}
		if bytes.HasPrefix(rest, []byte(`,"ok":true`)) {
			return nil
		}
		return decodeReply(p, nil)
	}
}

// appendJSONString appends s as a JSON string, exactly as encoding/json
// writes it. Strings of printable ASCII that need no escaping (tokens, app
// ids) are copied without allocating; others go through encoding/json.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always marshals
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
