package wsproto

import "encoding/binary"

// Kind is the kind of a Message.
type Kind uint8

// Message kinds. The zero Kind is invalid.
const (
	KindText Kind = iota + 1
	KindBinary
	KindPing
	KindPong
	KindClose
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case KindText:
		return "text"
	case KindBinary:
		return "binary"
	case KindPing:
		return "ping"
	case KindPong:
		return "pong"
	case KindClose:
		return "close"
	}
	return "invalid"
}

// Message is a whole data message or a control frame from the client.
//
// Payload and Reason are borrowed: they alias the bytes given to
// Reader.Next (unfragmented messages and control frames) or the Reader's
// reassembly buffer, and are valid until the next call to Next or Reset
// and only while the caller's input bytes are untouched. Copy what must
// outlive that.
type Message struct {
	Kind    Kind
	Payload []byte // unmasked; for KindClose the whole close payload
	// Code and Reason are set for KindClose: Code is CloseNoStatus when the
	// close frame was empty, and Reason is the UTF-8 text after the code.
	Code   CloseCode
	Reason []byte
	// Compressed is set when the message was sent with permessage-deflate
	// (only if Reader.Deflate): Payload is the compressed form and text
	// has not been checked for UTF-8 yet; see Reader.Decompress.
	Compressed bool
}

// DefaultMaxMessage is Reader.MaxMessage when it is zero.
const DefaultMaxMessage = 64 << 10

// reassemblyKeep is the largest reassembly buffer a Reader keeps for the
// next fragmented message; a larger one is dropped once its message has
// been handed out, so a connection that once sent a big message does not
// hold that memory while idle.
const reassemblyKeep = 4 << 10

// Reader checks one client's frame stream against RFC 6455 §5 and assembles
// messages. One Reader per connection, owned by the connection's event loop
// (not safe for concurrent use). The zero value is ready to use.
//
// A Reader is 16 bytes: a server holds one per connection, so the state of
// a fragmented message (its size, UTF-8 state and reassembly buffer) lives
// behind a pointer that is allocated by the first fragmented message and
// kept for the next one. Most clients never fragment and never pay for it.
//
// After Next returns a *CloseError the stream is broken: send the close
// frame and close the connection (or call Reset before reusing the Reader).
type Reader struct {
	// frag is the reassembly state; nil until a message is fragmented.
	frag *fragment
	// MaxMessage caps the payload of one whole message, summed over its
	// fragments (compressed bytes for a compressed message). Zero (or a
	// negative value) means DefaultMaxMessage (64 KiB). Control frames do
	// not count.
	MaxMessage int32
	// Deflate allows RSV1 on the first frame of a data message, meaning
	// permessage-deflate was negotiated (Request.Deflate.Enabled).
	Deflate bool

	// Fragmentation state: set by the first frame of a fragmented message
	// and cleared by its final continuation frame.
	inMessage  bool
	kind       Kind // of the message in progress
	compressed bool // the message in progress has RSV1 set
}

// fragment is the part of a Reader's state that only a fragmented message
// needs.
type fragment struct {
	size int       // payload bytes of the message in progress so far
	text utf8State // UTF-8 state across the fragments of a text message
	buf  []byte    // reassembly buffer
}

// Reset drops any message in progress, making the Reader ready for a new
// stream.
func (r *Reader) Reset() {
	r.inMessage = false
	r.kind = 0
	r.compressed = false
	if f := r.frag; f != nil {
		f.size = 0
		f.text = utf8Accept
		f.keep()
	}
}

// keep empties the reassembly buffer, dropping it if it is larger than
// reassemblyKeep.
func (f *fragment) keep() {
	if cap(f.buf) > reassemblyKeep {
		f.buf = nil
	} else {
		f.buf = f.buf[:0]
	}
}

func (r *Reader) maxMessage() int {
	if r.MaxMessage > 0 {
		return int(r.MaxMessage)
	}
	return DefaultMaxMessage
}

// Next consumes at most one frame from the start of b, unmasking it in
// place.
//
// ok is true when a whole message or a control frame is ready in m
// (m.Payload aliases b for an unfragmented message or a control frame, or
// the Reader's buffer for a reassembled one; valid until the next call).
// ok is false with n > 0 when a fragment was consumed but the message is
// not complete yet; call again with b[n:].
//
// err is ErrShortFrame (n == 0) when b holds no complete frame, or a
// *CloseError for a protocol violation, with the close code to send. A
// violation visible in the frame header (masking, reserved bits and
// opcodes, control frame rules, fragmentation order, size) is reported as
// soon as the header has arrived, without waiting for the payload. Text is
// validated as each fragment arrives, so invalid UTF-8 fails before the
// message completes.
func (r *Reader) Next(b []byte) (m Message, n int, ok bool, err error) {
	h, hl, err := parseHeader(b)
	if err != nil {
		return m, 0, false, err
	}

	// RFC 6455 §5.2: RSV1-3 must be 0 unless an extension defines them.
	// permessage-deflate (RFC 7692 §6) defines RSV1 on the first frame of
	// a data message; any other extension would claim its bits here.
	if h.rsv != 0 {
		if !r.Deflate || h.rsv != Rsv1 || (h.op != OpText && h.op != OpBinary) {
			return m, 0, false, errRsv
		}
	}
	if !h.op.Known() {
		return m, 0, false, errOpcode // §5.2: reserved opcodes
	}
	if !h.masked {
		return m, 0, false, errNotMasked // §5.1: client frames are masked
	}
	if h.op.IsControl() {
		if h.length > MaxControlPayload {
			return m, 0, false, errControlLen // §5.5
		}
		if !h.fin {
			return m, 0, false, errControlFin // §5.5
		}
	} else {
		switch {
		case h.op == OpContinuation && !r.inMessage:
			return m, 0, false, errContinuation // §5.4
		case h.op != OpContinuation && r.inMessage:
			return m, 0, false, errInterleaved // §5.4
		}
		size := uint64(0)
		if h.op == OpContinuation {
			size = uint64(r.frag.size) // inMessage: frag is set
		}
		if h.length > uint64(r.maxMessage())-size {
			return m, 0, false, errTooBig // §10.4
		}
	}
	if uint64(len(b)-hl) < h.length { // compared before adding: no overflow
		return Message{}, 0, false, ErrShortFrame
	}
	n = hl + int(h.length)
	payload := b[hl:n:n]
	MaskBytes(h.key, 0, payload)

	switch h.op {
	case OpPing:
		return Message{Kind: KindPing, Payload: payload}, n, true, nil
	case OpPong:
		return Message{Kind: KindPong, Payload: payload}, n, true, nil
	case OpClose:
		m, err = parseClose(payload)
		if err != nil {
			return Message{}, 0, false, err
		}
		return m, n, true, nil
	}

	// Data frames (§5.4, §5.6).
	if h.op != OpContinuation {
		kind := KindBinary
		if h.op == OpText {
			kind = KindText
		}
		compressed := h.rsv&Rsv1 != 0
		if h.fin {
			// Unfragmented: the payload is the message, in place.
			if kind == KindText && !compressed && !ValidUTF8(payload) {
				return Message{}, 0, false, errInvalidUTF8
			}
			return Message{Kind: kind, Payload: payload, Compressed: compressed}, n, true, nil
		}
		if r.frag == nil {
			r.frag = new(fragment)
		}
		r.inMessage = true
		r.kind = kind
		r.compressed = compressed
		r.frag.size = 0
		r.frag.text = utf8Accept
		r.frag.buf = r.frag.buf[:0]
	}
	f := r.frag // inMessage: set above or by the first fragment
	if r.kind == KindText && !r.compressed && !f.text.write(payload) {
		return Message{}, 0, false, errInvalidUTF8
	}
	f.size += len(payload)
	f.buf = append(f.buf, payload...)
	if !h.fin {
		return Message{}, n, false, nil
	}
	if r.kind == KindText && !r.compressed && f.text != utf8Accept {
		return Message{}, 0, false, errInvalidUTF8 // ends inside a character
	}
	m = Message{Kind: r.kind, Payload: f.buf, Compressed: r.compressed}
	r.inMessage = false
	r.kind = 0
	r.compressed = false
	f.size = 0
	// m.Payload keeps the buffer alive for the caller until it lets go;
	// the Reader only keeps a small one for reuse.
	f.keep()
	return m, n, true, nil
}

// parseClose checks a close frame's payload (RFC 6455 §5.5.1, §7.4).
func parseClose(p []byte) (Message, error) {
	m := Message{Kind: KindClose, Payload: p, Code: CloseNoStatus}
	switch {
	case len(p) == 0:
		return m, nil
	case len(p) == 1:
		return Message{}, errCloseLen
	}
	m.Code = CloseCode(binary.BigEndian.Uint16(p))
	if !ValidCloseCode(m.Code) {
		return Message{}, errCloseCode
	}
	m.Reason = p[2:]
	if !ValidUTF8(m.Reason) {
		return Message{}, errCloseUTF8
	}
	return m, nil
}

// Decompress replaces a compressed message's Payload with its inflated form
// appended to dst (see Inflate), limited to MaxMessage bytes (1009 past
// it), and checks that text is valid UTF-8 (1007). It does nothing to a
// message that is not Compressed. m.Payload then aliases the returned
// slice.
func (r *Reader) Decompress(dst []byte, m *Message) ([]byte, error) {
	if !m.Compressed {
		return dst, nil
	}
	start := len(dst)
	out, err := Inflate(dst, m.Payload, r.maxMessage())
	if err != nil {
		return out, err
	}
	if m.Kind == KindText && !ValidUTF8(out[start:]) {
		return out[:start], errInvalidUTF8
	}
	m.Payload = out[start:]
	m.Compressed = false
	return out, nil
}
