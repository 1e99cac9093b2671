package wsproto

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"strconv"
)

// HandshakeConfig is the server's handshake policy. It is read-only once in
// use and may be shared by every event loop.
type HandshakeConfig struct {
	// Origins lists the allowed Origin header values, scheme://host[:port],
	// compared case-insensitively. Empty allows any origin. A request
	// without an Origin header (a non-browser client) is always allowed:
	// the check exists to stop other sites' pages from connecting with
	// the user's cookies, and only browsers send Origin.
	Origins []string
	// Subprotocols lists the supported subprotocols. The first protocol
	// the client offers that is in this list is echoed.
	Subprotocols []string
	// EchoFirstProtocol echoes the client's first offered subprotocol when
	// none of its offers is in Subprotocols (WeChat H5 clients offer one
	// and fail unless it comes back).
	EchoFirstProtocol bool
	// MaxHeaderBytes caps the request head (request line, headers and the
	// blank line). Zero means 8 KiB. A longer head is rejected with 431.
	MaxHeaderBytes int
	// Compression enables permessage-deflate (RFC 7692) when the client
	// offers it. See DeflateParams for what is negotiated.
	Compression bool
}

// DefaultMaxHeaderBytes is the request head limit when
// HandshakeConfig.MaxHeaderBytes is zero.
const DefaultMaxHeaderBytes = 8 << 10

// Request is what a valid upgrade request said. The strings are copies and
// may be kept after the input bytes are gone.
type Request struct {
	Path          string // request path as sent (not unescaped), "/" at least
	Query         string // after '?', without it; "" if none
	Host          string
	Origin        string // "" if the client sent none
	Key           string // Sec-WebSocket-Key
	Protocol      string // the selected subprotocol; "" for none
	UserAgent     string
	XForwardedFor string // every X-Forwarded-For line, joined with ", " in order
	XRealIP       string
	// Deflate is the negotiated permessage-deflate extension; its Enabled
	// field is false unless HandshakeConfig.Compression is set and the
	// client offered an acceptable configuration.
	Deflate DeflateParams
}

// ErrShortHandshake means the request head is not complete yet (no blank
// line): read more bytes and call ParseHandshake again with the longer slice.
var ErrShortHandshake = errors.New("wsproto: incomplete handshake request")

// HandshakeError rejects an upgrade request. The server writes
// AppendHandshakeError's response and closes the connection.
//
// The *HandshakeError values returned by ParseHandshake are shared and
// read-only.
type HandshakeError struct {
	Status int    // HTTP status code
	Reason string // human-readable, sent as the response body
}

// Error implements error.
func (e *HandshakeError) Error() string {
	return "wsproto: handshake rejected: " + strconv.Itoa(e.Status) + " " + e.Reason
}

// Handshake rejections, shared so that rejecting costs no allocation.
var (
	errHSTooLarge   = &HandshakeError{431, "request header too large"}
	errHSMalformed  = &HandshakeError{400, "malformed HTTP request"}
	errHSNotWS      = &HandshakeError{426, "this port speaks WebSocket: send a WebSocket upgrade request"}
	errHSMethod     = &HandshakeError{405, "WebSocket upgrade requires GET"}
	errHSProto      = &HandshakeError{505, "WebSocket upgrade requires HTTP/1.1 or later"}
	errHSTarget     = &HandshakeError{400, "bad request target"}
	errHSHost       = &HandshakeError{400, "missing Host header"}
	errHSUpgrade    = &HandshakeError{400, "Upgrade header does not contain websocket"}
	errHSConnection = &HandshakeError{400, "Connection header does not contain upgrade"}
	errHSVersion    = &HandshakeError{426, "unsupported Sec-WebSocket-Version: this server speaks version 13"}
	errHSKey        = &HandshakeError{400, "missing or invalid Sec-WebSocket-Key"}
	errHSDupKey     = &HandshakeError{400, "repeated Sec-WebSocket-Key"}
	errHSOrigin     = &HandshakeError{403, "origin not allowed"}
)

// ParseHandshake parses and checks the HTTP upgrade request head at the
// start of b (RFC 6455 §4.2.1). n is the length of the head, including the
// blank line; bytes after it (a client may send its first frame right
// behind the request) are not consumed.
//
// It returns ErrShortHandshake while the blank line that ends the head has
// not arrived, and a *HandshakeError when the request must be rejected:
//   - 426 for a plain HTTP request (no Upgrade header) or a
//     Sec-WebSocket-Version other than 13,
//   - 405 for a method other than GET, 505 for HTTP/1.0,
//   - 400 for a malformed request, a missing Host, an Upgrade without
//     websocket, a Connection without upgrade, or a Sec-WebSocket-Key that
//     is not base64 of 16 bytes,
//   - 403 for an Origin not in cfg.Origins,
//   - 431 for a head longer than cfg.MaxHeaderBytes.
//
// It allocates only the strings of the Request it returns. cfg may be nil
// (defaults, no origin check, no subprotocols).
func ParseHandshake(b []byte, cfg *HandshakeConfig) (Request, int, error) {
	var zero HandshakeConfig
	if cfg == nil {
		cfg = &zero
	}
	limit := cfg.MaxHeaderBytes
	if limit <= 0 {
		limit = DefaultMaxHeaderBytes
	}
	window := b
	if len(window) > limit {
		window = window[:limit]
	}
	end := bytes.Index(window, crlfcrlf)
	if end < 0 {
		if len(b) >= limit {
			return Request{}, 0, errHSTooLarge
		}
		if !plausibleMethod(b) {
			// Not HTTP at all (say a TLS ClientHello): no point waiting.
			return Request{}, 0, errHSMalformed
		}
		return Request{}, 0, ErrShortHandshake
	}
	n := end + 4
	head := b[:end+2] // every line, each with its CRLF

	// Request line: method SP request-target SP HTTP-version.
	eol := bytes.Index(head, crlf)
	line := head[:eol]
	rest := head[eol+2:]
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return Request{}, 0, errHSMalformed
	}
	method := line[:sp1]
	line = line[sp1+1:]
	sp2 := bytes.IndexByte(line, ' ')
	if sp2 <= 0 {
		return Request{}, 0, errHSMalformed
	}
	target, version := line[:sp2], line[sp2+1:]
	major, minor, ok := parseHTTPVersion(version)
	if !ok || !isToken(method) {
		return Request{}, 0, errHSMalformed
	}

	// Headers. Values are kept as slices of b until every check passed.
	h := reqHeaders{protoIdx: -1}
	for len(rest) > 0 {
		eol = bytes.Index(rest, crlf)
		line, rest = rest[:eol], rest[eol+2:]
		if err := h.add(line, cfg); err != nil {
			return Request{}, 0, err
		}
	}

	switch {
	case !h.upgradeSeen:
		return Request{}, 0, errHSNotWS
	case string(method) != "GET":
		return Request{}, 0, errHSMethod
	case major < 1 || major == 1 && minor < 1:
		return Request{}, 0, errHSProto
	case len(h.host) == 0:
		return Request{}, 0, errHSHost
	case !h.upgradeWS:
		return Request{}, 0, errHSUpgrade
	case !h.connUpgrade:
		return Request{}, 0, errHSConnection
	case string(h.version) != "13":
		return Request{}, 0, errHSVersion
	case !validKey(h.key):
		return Request{}, 0, errHSKey
	case h.originSeen && !originAllowed(h.origin, cfg.Origins):
		return Request{}, 0, errHSOrigin
	}
	path, query, ok := splitTarget(target)
	if !ok {
		return Request{}, 0, errHSTarget
	}

	r := Request{
		Path:          copyString(path),
		Query:         copyString(query),
		Host:          copyString(h.host),
		Origin:        copyString(h.origin),
		Key:           copyString(h.key),
		UserAgent:     copyString(h.userAgent),
		XForwardedFor: copyString(h.xff),
		XRealIP:       copyString(h.xRealIP),
		Deflate:       h.deflate,
	}
	if h.xffJoined != nil {
		r.XForwardedFor = string(h.xffJoined)
	}
	switch {
	case h.protoIdx >= 0:
		r.Protocol = cfg.Subprotocols[h.protoIdx] // no copy needed
	case cfg.EchoFirstProtocol && h.firstProto != nil:
		r.Protocol = copyString(h.firstProto)
	}
	return r, n, nil
}

var (
	crlf     = []byte("\r\n")
	crlfcrlf = []byte("\r\n\r\n")
)

// copyString copies b into a new string; an empty b costs nothing.
func copyString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return string(b)
}

// plausibleMethod reports whether b could still start an HTTP request: a
// token followed by a space, or a token prefix.
func plausibleMethod(b []byte) bool {
	for i, c := range b {
		if c == ' ' {
			return i > 0
		}
		if !isTokenChar(c) || i >= 32 {
			return false
		}
	}
	return true
}

// reqHeaders collects the header values ParseHandshake looks at. The slices
// alias the request bytes.
type reqHeaders struct {
	host, origin, key, version []byte
	userAgent, xff, xRealIP    []byte
	xffJoined                  []byte // every X-Forwarded-For line, when there are several
	xffSeen                    bool
	firstProto                 []byte // the client's first offered subprotocol
	protoIdx                   int    // index in cfg.Subprotocols of the chosen one, or -1
	upgradeSeen                bool   // an Upgrade header was present at all
	upgradeWS, connUpgrade     bool
	hostSeen, keySeen          bool
	originSeen                 bool
	deflate                    DeflateParams
}

// add records one header line.
func (h *reqHeaders) add(line []byte, cfg *HandshakeConfig) error {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || !isToken(line[:colon]) {
		// Covers obsolete line folding (a line starting with SP/HT),
		// which RFC 7230 §3.2.4 lets a server reject with 400.
		return errHSMalformed
	}
	name := line[:colon]
	value := trimOWS(line[colon+1:])
	for _, c := range value {
		if c < ' ' && c != '\t' || c == 0x7F {
			return errHSMalformed // a control character inside a value
		}
	}
	switch {
	case equalFold(name, "host"):
		if h.hostSeen {
			return errHSMalformed // RFC 7230 §5.4: more than one Host is a 400
		}
		h.hostSeen = true
		h.host = value
	case equalFold(name, "upgrade"):
		h.upgradeSeen = true
		if hasToken(value, "websocket") {
			h.upgradeWS = true
		}
	case equalFold(name, "connection"):
		if hasToken(value, "upgrade") {
			h.connUpgrade = true
		}
	case equalFold(name, "sec-websocket-version"):
		h.version = value
	case equalFold(name, "sec-websocket-key"):
		if h.keySeen {
			return errHSDupKey
		}
		h.keySeen = true
		h.key = value
	case equalFold(name, "origin"):
		if h.originSeen {
			return errHSMalformed // which one would the check apply to?
		}
		h.originSeen = true
		h.origin = value
	case equalFold(name, "sec-websocket-protocol"):
		h.offerProtocols(value, cfg)
	case equalFold(name, "sec-websocket-extensions"):
		if cfg.Compression && !h.deflate.Enabled {
			h.deflate = negotiateDeflate(value)
		}
	case equalFold(name, "user-agent"):
		h.userAgent = value
	case equalFold(name, "x-forwarded-for"):
		// Several lines are one comma-separated list in order
		// (RFC 9110 §5.3); proxies that add a line put theirs last.
		switch {
		case !h.xffSeen:
			h.xff, h.xffSeen = value, true
		case h.xffJoined == nil:
			h.xffJoined = append(append(append([]byte(nil), h.xff...), ", "...), value...)
		default:
			h.xffJoined = append(append(h.xffJoined, ", "...), value...)
		}
	case equalFold(name, "x-real-ip"):
		h.xRealIP = value
	}
	return nil
}

// offerProtocols walks one Sec-WebSocket-Protocol list in client order.
func (h *reqHeaders) offerProtocols(list []byte, cfg *HandshakeConfig) {
	for len(list) > 0 && h.protoIdx < 0 {
		var tok []byte
		if i := bytes.IndexByte(list, ','); i >= 0 {
			tok, list = trimOWS(list[:i]), list[i+1:]
		} else {
			tok, list = trimOWS(list), nil
		}
		if len(tok) == 0 || !isToken(tok) {
			continue
		}
		if h.firstProto == nil {
			h.firstProto = tok
		}
		for i, p := range cfg.Subprotocols {
			if string(tok) == p {
				h.protoIdx = i
				break
			}
		}
	}
}

// parseHTTPVersion parses "HTTP/x.y".
func parseHTTPVersion(v []byte) (major, minor int, ok bool) {
	if len(v) != 8 || string(v[:5]) != "HTTP/" || v[6] != '.' ||
		!isDigit(v[5]) || !isDigit(v[7]) {
		return 0, 0, false
	}
	return int(v[5] - '0'), int(v[7] - '0'), true
}

// splitTarget splits an origin-form ("/path?query") or absolute-form
// ("http://host/path?query", RFC 7230 §5.3.2) request target.
func splitTarget(t []byte) (path, query []byte, ok bool) {
	if len(t) == 0 {
		return nil, nil, false
	}
	if t[0] != '/' {
		i := bytes.Index(t, []byte("://"))
		if i <= 0 || !isScheme(t[:i]) {
			return nil, nil, false
		}
		t = t[i+3:]
		j := bytes.IndexAny(t, "/?")
		if j < 0 {
			return []byte("/"), nil, true
		}
		t = t[j:]
	}
	for _, c := range t {
		if c <= ' ' || c == 0x7F {
			return nil, nil, false
		}
	}
	if i := bytes.IndexByte(t, '?'); i >= 0 {
		path, query = t[:i], t[i+1:]
	} else {
		path = t
	}
	if len(path) == 0 {
		path = []byte("/")
	}
	return path, query, true
}

func isScheme(s []byte) bool {
	return equalFold(s, "http") || equalFold(s, "https") || equalFold(s, "ws") || equalFold(s, "wss")
}

// validKey reports whether k is base64 of exactly 16 bytes (RFC 6455 §4.2.1
// item 5): 24 characters ending in "==".
func validKey(k []byte) bool {
	if len(k) != 24 || k[22] != '=' || k[23] != '=' {
		return false
	}
	var out [18]byte
	n, err := base64.StdEncoding.Decode(out[:], k)
	return err == nil && n == 16
}

// originAllowed compares origin case-insensitively with each allowed value.
func originAllowed(origin []byte, allowed []string) bool {
	if len(allowed) == 0 {
		return true
	}
	for _, a := range allowed {
		if equalFold(origin, a) {
			return true
		}
	}
	return false
}

// hasToken reports whether the comma-separated list v contains tok
// (case-insensitive, optional whitespace around elements).
func hasToken(v []byte, tok string) bool {
	for len(v) > 0 {
		var e []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			e, v = v[:i], v[i+1:]
		} else {
			e, v = v, nil
		}
		if equalFold(trimOWS(e), tok) {
			return true
		}
	}
	return false
}

// equalFold is an ASCII case-insensitive comparison of b and s.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// trimOWS trims spaces and tabs at both ends.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isTokenChar reports whether c is a tchar (RFC 7230 §3.2.6).
func isTokenChar(c byte) bool {
	if c >= 0x80 {
		return false
	}
	return tokenChars[c>>6]&(1<<(c&63)) != 0
}

var tokenChars = func() (t [2]uint64) {
	const s = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	for i := 0; i < len(s); i++ {
		c := s[i]
		t[c>>6] |= 1 << (c & 63)
	}
	return t
}()

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isTokenChar(c) {
			return false
		}
	}
	return true
}

// websocketGUID is the fixed GUID of RFC 6455 §1.3.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKey returns the Sec-WebSocket-Accept value for a Sec-WebSocket-Key:
// base64(SHA-1(key + GUID)) (RFC 6455 §4.2.2).
func AcceptKey(key string) string {
	var out [28]byte
	appendAccept(out[:0], key)
	return string(out[:])
}

// appendAccept appends AcceptKey(key) (28 bytes) without allocating for
// keys of the usual 24 bytes.
func appendAccept(dst []byte, key string) []byte {
	var buf [24 + len(websocketGUID)]byte
	var sum [sha1.Size]byte
	if len(key) == 24 {
		copy(buf[:], key)
		copy(buf[24:], websocketGUID)
		sum = sha1.Sum(buf[:])
	} else {
		sum = sha1.Sum([]byte(key + websocketGUID))
	}
	var enc [28]byte
	base64.StdEncoding.Encode(enc[:], sum[:])
	return append(dst, enc[:]...)
}

// AppendHandshakeResponse appends the 101 Switching Protocols response for a
// request that ParseHandshake accepted: Sec-WebSocket-Accept, plus
// Sec-WebSocket-Protocol when r.Protocol is set and
// Sec-WebSocket-Extensions when r.Deflate.Enabled.
func AppendHandshakeResponse(dst []byte, r *Request) []byte {
	dst = append(dst, "HTTP/1.1 101 Switching Protocols\r\n"+
		"Upgrade: websocket\r\n"+
		"Connection: Upgrade\r\n"+
		"Sec-WebSocket-Accept: "...)
	dst = appendAccept(dst, r.Key)
	dst = append(dst, "\r\n"...)
	if r.Protocol != "" {
		dst = append(dst, "Sec-WebSocket-Protocol: "...)
		dst = append(dst, r.Protocol...)
		dst = append(dst, "\r\n"...)
	}
	if r.Deflate.Enabled {
		dst = append(dst, "Sec-WebSocket-Extensions: "...)
		dst = r.Deflate.AppendResponse(dst)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// AppendHandshakeError appends a complete HTTP/1.1 error response for e:
// Connection: close and a text/plain body of e.Reason and a newline. A 426
// also carries Upgrade: websocket and Sec-WebSocket-Version: 13 (RFC 6455
// §4.4), and a 405 carries Allow: GET.
func AppendHandshakeError(dst []byte, e *HandshakeError) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(e.Status), 10)
	dst = append(dst, ' ')
	dst = append(dst, statusText(e.Status)...)
	dst = append(dst, "\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n"...)
	switch e.Status {
	case 426:
		dst = append(dst, "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"...)
	case 405:
		dst = append(dst, "Allow: GET\r\n"...)
	}
	dst = append(dst, "Content-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(e.Reason)+1), 10)
	dst = append(dst, "\r\n\r\n"...)
	dst = append(dst, e.Reason...)
	return append(dst, '\n')
}

// statusText is the reason phrase for the statuses a handshake can end with.
func statusText(code int) string {
	switch code {
	case 400:
		return "Bad Request"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 426:
		return "Upgrade Required"
	case 429:
		return "Too Many Requests"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 503:
		return "Service Unavailable"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Error"
}
