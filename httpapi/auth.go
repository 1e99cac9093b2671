package httpapi

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/valyala/fasthttp"

	"chatd/chat"
)

// Request-signing headers (see docs/http-api.md, "Signing").
const (
	HeaderApp       = "X-Chatd-App"
	HeaderTimestamp = "X-Chatd-Timestamp"
	HeaderNonce     = "X-Chatd-Nonce"
	HeaderSignature = "X-Chatd-Signature"
)

// Nonce length bounds.
const (
	minNonce = 8
	maxNonce = 64
)

// Key kinds in the replay cache.
const (
	kindAdmin = 'A'
	kindApp   = 'P'
)

var (
	errNoSignature = chat.Errf(chat.CodeUnauthorized, "missing "+HeaderSignature)
	errNoTimestamp = chat.Errf(chat.CodeUnauthorized, "missing "+HeaderTimestamp)
	errNoNonce     = chat.Errf(chat.CodeUnauthorized, "missing "+HeaderNonce)
	errNoApp       = chat.Errf(chat.CodeUnauthorized, "missing "+HeaderApp)
	errNoAppQuery  = chat.Errf(chat.CodeUnauthorized, "access_token needs app=<app id> beside it")
	errBadTS       = chat.Errf(chat.CodeUnauthorized, "bad "+HeaderTimestamp+": want unix seconds")
	errBadNonce    = chat.Errf(chat.CodeUnauthorized,
		"bad "+HeaderNonce+": want 8-64 characters from A-Z a-z 0-9 _ -")
	errBadSig      = chat.Errf(chat.CodeUnauthorized, "bad signature")
	errReplay      = chat.Errf(chat.CodeUnauthorized, "nonce already used")
	errNoncesFull  = chat.Errf(chat.CodeRateLimited, "too many signed requests in the signature window; retry later")
	errNoBearer    = chat.Errf(chat.CodeUnauthorized, "missing Authorization: Bearer <token>")
	errBadBearer   = chat.Errf(chat.CodeUnauthorized, "Authorization must be \"Bearer <token>\"")
	errAdminRemote = chat.Errf(chat.CodeForbidden, "admin API is loopback-only")
)

// signedHeaders are the signing headers of one request, borrowed from it.
type signedHeaders struct {
	sig, ts, nonce []byte
	tsv            int64
}

// readSigned reads and checks the form of the signing headers.
func readSigned(h *fasthttp.RequestHeader) (signedHeaders, *chat.Error) {
	sh := signedHeaders{
		sig:   h.Peek(HeaderSignature),
		ts:    h.Peek(HeaderTimestamp),
		nonce: h.Peek(HeaderNonce),
	}
	switch {
	case len(sh.sig) == 0:
		return sh, errNoSignature
	case len(sh.ts) == 0:
		return sh, errNoTimestamp
	case len(sh.nonce) == 0:
		return sh, errNoNonce
	}
	var ok bool
	if sh.tsv, ok = parseUnix(sh.ts); !ok {
		return sh, errBadTS
	}
	if !validNonce(sh.nonce) {
		return sh, errBadNonce
	}
	return sh, nil
}

// verify checks a signed request against key at time now and records its
// nonce under (kind, id). Order matters: the nonce is recorded only once
// the signature is proven, so unsigned junk cannot fill the replay cache.
func (s *Server) verify(ctx *fasthttp.RequestCtx, sh signedHeaders, kind byte, id string, key []byte, now int64) *chat.Error {
	if e := s.checkWindow(sh, now); e != nil {
		return e
	}
	var got [sha256.Size]byte
	if len(sh.sig) != 2*sha256.Size {
		return errBadSig
	}
	if _, err := hex.Decode(got[:], sh.sig); err != nil {
		return errBadSig
	}
	var sum [sha256.Size]byte
	want := signature(sum[:0], key, ctx.Method(), ctx.Request.Header.RequestURI(), sh.ts, sh.nonce, ctx.PostBody())
	if !hmac.Equal(got[:], want) {
		return errBadSig
	}
	switch s.nonces.add(kind, id, sh.nonce, sh.tsv+s.window, now) {
	case nonceReplay:
		return errReplay
	case nonceFull:
		return errNoncesFull
	}
	return nil
}

// checkWindow checks a signed request's timestamp against now.
func (s *Server) checkWindow(sh signedHeaders, now int64) *chat.Error {
	if sh.tsv < now-s.window || sh.tsv > now+s.window {
		return chat.Errf(chat.CodeUnauthorized, s.windowMsg+" (server time "+itoa(now)+")")
	}
	if sh.tsv > now+s.ahead {
		// Bounded more tightly than the past: the nonce is remembered
		// until the timestamp leaves the window, so a timestamp far ahead
		// would keep it (and its share of the cache) alive that much
		// longer.
		return chat.Errf(chat.CodeUnauthorized, s.aheadMsg+" (server time "+itoa(now)+")")
	}
	return nil
}

var newline = []byte{'\n'}

// signature appends HMAC-SHA256(key, method \n uri \n ts \n nonce \n body)
// to dst.
func signature(dst, key, method, uri, ts, nonce, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(method)
	m.Write(newline)
	m.Write(uri)
	m.Write(newline)
	m.Write(ts)
	m.Write(newline)
	m.Write(nonce)
	m.Write(newline)
	m.Write(body)
	return m.Sum(dst)
}

// authAdmin authenticates a server admin request: loopback peer (unless
// AdminFromAnywhere) and a signature by the admin key.
func (s *Server) authAdmin(ctx *fasthttp.RequestCtx) *chat.Error {
	if !s.cfg.AdminFromAnywhere && !s.clientIP(ctx).IsLoopback() {
		return errAdminRemote
	}
	sh, e := readSigned(&ctx.Request.Header)
	if e != nil {
		return e
	}
	return s.verify(ctx, sh, kindAdmin, "", s.adminKey, time.Now().Unix())
}

// authApp authenticates an app API request signed with the app's secret
// and returns the app id.
func (s *Server) authApp(ctx *fasthttp.RequestCtx) (string, error) {
	sh, e := readSigned(&ctx.Request.Header)
	if e != nil {
		return "", e
	}
	id, secret, err := s.appSecret(ctx)
	if err != nil {
		return "", err
	}
	if e := s.verify(ctx, sh, kindApp, id, secret, time.Now().Unix()); e != nil {
		return "", e
	}
	return id, nil
}

// authAppStream starts the authentication of a signed app request whose
// body is read as a stream (uploads): the headers and the timestamp are
// checked now; the returned streamMAC takes the body as it is read and
// its verify checks the signature, then records the nonce.
func (s *Server) authAppStream(ctx *fasthttp.RequestCtx) (string, *streamMAC, error) {
	sh, e := readSigned(&ctx.Request.Header)
	if e != nil {
		return "", nil, e
	}
	id, secret, err := s.appSecret(ctx)
	if err != nil {
		return "", nil, err
	}
	now := time.Now().Unix()
	if e := s.checkWindow(sh, now); e != nil {
		return "", nil, e
	}
	want := make([]byte, sha256.Size)
	if len(sh.sig) != 2*sha256.Size {
		return "", nil, errBadSig
	}
	if _, err := hex.Decode(want, sh.sig); err != nil {
		return "", nil, errBadSig
	}
	m := &streamMAC{h: hmac.New(sha256.New, secret), want: want, srv: s, app: id,
		nonce: append([]byte(nil), sh.nonce...), exp: sh.tsv + s.window, now: now}
	for _, part := range [][]byte{ctx.Method(), ctx.Request.Header.RequestURI(), sh.ts, sh.nonce} {
		m.h.Write(part)
		m.h.Write(newline)
	}
	return id, m, nil
}

// appSecret returns the app id of a signed request and the key to check
// it with (a random one for an unknown app).
func (s *Server) appSecret(ctx *fasthttp.RequestCtx) (string, []byte, error) {
	appID := ctx.Request.Header.Peek(HeaderApp)
	if len(appID) == 0 {
		return "", nil, errNoApp
	}
	id := string(appID)
	secret := s.unknownAppKey
	app, err := s.core.App(s.reqCtx, id)
	if err != nil {
		var ce *chat.Error
		if !errors.Is(err, chat.ErrNotFound) && !(errors.As(err, &ce) && ce.Code == chat.CodeNotFound) {
			return "", nil, err
		}
		// An unknown app is checked like a known one against a random key
		// no client has, so it fails the same way (the window check, then
		// "bad signature") after the same work: the answer does not tell
		// whether an app id exists.
	} else {
		secret = []byte(app.Secret)
	}
	return id, secret, nil
}

// authToken authenticates a user API request: X-Chatd-App and
// Authorization: Bearer <token>, checked by core.Login.
func (s *Server) authToken(ctx *fasthttp.RequestCtx, query bool) (chat.Identity, error) {
	if query && len(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)) == 0 {
		if tok := ctx.QueryArgs().Peek("access_token"); len(tok) > 0 {
			app := ctx.QueryArgs().Peek("app")
			if len(app) == 0 {
				return chat.Identity{}, errNoAppQuery
			}
			return s.core.Login(s.reqCtx, string(app), string(tok))
		}
	}
	appID := ctx.Request.Header.Peek(HeaderApp)
	if len(appID) == 0 {
		return chat.Identity{}, errNoApp
	}
	auth := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	if len(auth) == 0 {
		return chat.Identity{}, errNoBearer
	}
	const scheme = "bearer "
	if len(auth) <= len(scheme) || !bytes.EqualFold(auth[:len(scheme)], []byte(scheme)) {
		return chat.Identity{}, errBadBearer
	}
	token := bytes.TrimSpace(auth[len(scheme):])
	if len(token) == 0 {
		return chat.Identity{}, errBadBearer
	}
	return s.core.Login(s.reqCtx, string(appID), string(token))
}

// clientIP is the address of the client: the peer, or, when the peer is a
// trusted proxy, the nearest address in X-Forwarded-For that is not a
// trusted proxy (the leftmost if all are), else X-Real-IP. Non-TCP peers
// (for example in-memory test connections) have the invalid Addr.
//
// It fails closed: whenever the forwarding headers of a trusted proxy
// cannot be believed, the answer is the invalid Addr (not loopback, not
// anybody), never the proxy's own address, which would make every client
// behind a proxy on the same host look local. That is the case when an
// address in X-Forwarded-For or X-Real-IP does not parse, and when both
// headers are present and X-Real-IP names an address outside the trusted
// proxies that X-Forwarded-For does not end at: one of the two was written
// by the client (a proxy that sets X-Real-IP and passes the client's
// X-Forwarded-For through unchanged).
func (s *Server) clientIP(ctx *fasthttp.RequestCtx) netip.Addr {
	peer := addrOf(ctx.RemoteAddr())
	if !s.trusted(peer) {
		return peer
	}
	var real netip.Addr
	xr := bytes.TrimSpace(ctx.Request.Header.Peek("X-Real-IP"))
	if len(xr) > 0 {
		a, err := netip.ParseAddr(string(xr))
		if err != nil {
			return netip.Addr{}
		}
		real = a.Unmap()
	}
	xff := ctx.Request.Header.Peek(fasthttp.HeaderXForwardedFor)
	if len(xff) == 0 {
		if real.IsValid() {
			return real
		}
		return peer
	}
	var client, leftmost netip.Addr
	for rest := xff; len(rest) > 0; {
		i := bytes.LastIndexByte(rest, ',')
		part := bytes.TrimSpace(rest[i+1:])
		rest = rest[:max(i, 0)]
		a, err := netip.ParseAddr(string(part))
		if err != nil {
			return netip.Addr{}
		}
		a = a.Unmap()
		if !s.trusted(a) {
			client = a
			break
		}
		leftmost = a
		if i < 0 {
			break
		}
	}
	if !client.IsValid() {
		client = leftmost
	}
	if real.IsValid() && !s.trusted(real) && real != client {
		return netip.Addr{}
	}
	return client
}

// trusted reports whether a is a trusted proxy.
func (s *Server) trusted(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// addrOf is the IP of a TCP address, the invalid Addr for anything else.
func addrOf(a net.Addr) netip.Addr {
	if t, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(t.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}

// parseUnix parses a decimal unix time (no sign, at most 18 digits, so it
// cannot overflow; a value in milliseconds parses and then fails the window
// check, whose message shows the server's time in seconds).
func parseUnix(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// validNonce reports whether b is 8–64 characters of [A-Za-z0-9_-].
func validNonce(b []byte) bool {
	if len(b) < minNonce || len(b) > maxNonce {
		return false
	}
	for _, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
