package bench

import "bytes"

// Hot-path decoding of the server's frames. The server's encoders put the
// fields of replies and message events in a fixed order with no spaces
// (chat/codec.go), and values inside JSON strings cannot contain an
// unescaped quote, so a key pattern such as `"seq":` found by bytes.Index
// is the field itself. Only what a scenario needs is decoded; nothing here
// allocates.

var (
	prefixReply    = []byte(`{"reply_to":`)
	prefixMessage  = []byte(`{"event":"message","data":{`)
	prefixBcast    = []byte(`{"event":"broadcast","data":{`)
	keySessionID   = []byte(`"session_id":`)
	keySeq         = []byte(`"seq":`)
	keyT           = []byte(`"t":`)
	keyRunTag      = []byte(`,"r":"`)
	keyFrom        = []byte(`"from":"`)
	keyCode        = []byte(`"code":"`)
	keyDuplicate   = []byte(`"duplicate":true`)
	keyContentOpen = []byte(`"content":{`)
)

// leadingUint parses the decimal digits at the start of b.
func leadingUint(b []byte) (v uint64, n int, ok bool) {
	for n < len(b) && b[n] >= '0' && b[n] <= '9' && n < 20 {
		v = v*10 + uint64(b[n]-'0')
		n++
	}
	return v, n, n > 0
}

// fieldUint returns the unsigned integer after the first occurrence of
// key (a pattern like `"seq":`).
func fieldUint(b, key []byte) (uint64, bool) {
	i := bytes.Index(b, key)
	if i < 0 {
		return 0, false
	}
	v, _, ok := leadingUint(b[i+len(key):])
	return v, ok
}

// fieldString returns the string value after key (a pattern ending in the
// opening quote, like `"code":"`), up to the closing quote. Escapes are
// not decoded: the values read this way (codes, uids chatbench made) have
// none.
func fieldString(b, key []byte) ([]byte, bool) {
	i := bytes.Index(b, key)
	if i < 0 {
		return nil, false
	}
	rest := b[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return nil, false
	}
	return rest[:j], true
}

// replyID splits a reply frame `{"reply_to":N,…}` into its numeric id and
// the rest. ok is false for other frames and for non-numeric ids
// (chatbench only sends numeric ones).
func replyID(p []byte) (id uint64, rest []byte, ok bool) {
	if !bytes.HasPrefix(p, prefixReply) {
		return 0, nil, false
	}
	b := p[len(prefixReply):]
	id, n, ok := leadingUint(b)
	if !ok {
		return 0, nil, false
	}
	return id, b[n:], true
}

// msgFields is what a scenario learns from a message event.
type msgFields struct {
	session uint64
	seq     uint64
	t       int64  // intended send time on the run clock; valid when hasT
	hasT    bool   // the content carried chatbench's "t"
	tag     []byte // the sending run's tag ("r"), when hasT
	from    []byte
}

// parseMessage decodes a message event `{"event":"message","data":{…}}`.
// from and tag alias p. ok is false when p is not a message event.
func parseMessage(p []byte) (m msgFields, ok bool) { return parseMessageEvent(p, prefixMessage) }

// parseMessageEvent parses an event carrying a message object, after prefix
// (a `message` event, or a `broadcast`).
func parseMessageEvent(p, prefix []byte) (m msgFields, ok bool) {
	if !bytes.HasPrefix(p, prefix) {
		return m, false
	}
	d := p[len(prefix):]
	m.session, _ = fieldUint(d, keySessionID)
	m.seq, _ = fieldUint(d, keySeq)
	m.from, _ = fieldString(d, keyFrom)
	if i := bytes.Index(d, keyContentOpen); i >= 0 {
		// chatbench puts "t" and its run tag first in its content:
		// {"t":123,"r":"tag","text":"…"}.
		c := d[i+len(keyContentOpen):]
		if bytes.HasPrefix(c, keyT) {
			v, n, ok := leadingUint(c[len(keyT):])
			m.t, m.hasT = int64(v), ok
			if rest := c[len(keyT)+n:]; ok && bytes.HasPrefix(rest, keyRunTag) {
				rest = rest[len(keyRunTag):]
				if j := bytes.IndexByte(rest, '"'); j >= 0 {
					m.tag = rest[:j]
				}
			}
		}
	}
	return m, true
}
