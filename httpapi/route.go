package httpapi

import (
	"bytes"
	"errors"
	"io"
	"net/url"
	"runtime/debug"

	"github.com/valyala/fasthttp"

	"chatd/chat"
	"chatd/internal/demo"
)

// authKind is how an endpoint authenticates its caller.
type authKind uint8

const (
	authNone  authKind = iota + 1 // public (health)
	authAdmin                     // signed with the server admin key, loopback only
	authApp                       // signed with an app's secret
	authToken                     // Bearer chat token + X-Chatd-App
	authLocal                     // unsigned, loopback only (like admin): /metrics
	// authTokenQuery is authToken, or ?app=…&access_token=… for browser
	// EventSource, which cannot send headers.
	authTokenQuery
	// authAppStream is authApp for a body read as a stream (uploads): the
	// signature over the body is checked once it is read (upload.go).
	authAppStream
	// authDemo is the demo backend's (demo.go): a loopback caller, on a
	// page loaded from a loopback host (internal/demo.Allowed).
	authDemo
)

// reqInfo is what routing and authentication learned about one request.
// It lives on the handler's stack.
type reqInfo struct {
	app   string        // authApp: the app id
	ident chat.Identity // authToken: the logged-in user
	param string        // the path parameter ({uid} or {id}), unescaped
	from  string        // the node that forwarded the call ("": a client's; forward.go)
	// bodyMAC (authAppStream) checks the signature once the body is read.
	bodyMAC *streamMAC
}

// handlerFunc serves one authenticated request. It writes the success
// answer itself; a returned error is answered by Server.fail.
type handlerFunc func(s *Server, ctx *fasthttp.RequestCtx, r *reqInfo) error

// endpoint is one route.
type endpoint struct {
	pattern string // as documented, e.g. "/api/v1/users/{uid}"
	auth    authKind
	get     handlerFunc
	post    handlerFunc
	allow   string // the Allow header of a 405
}

// Endpoint ids, indexes into endpoints.
const (
	epNone = iota
	epHealth
	epAdminApps
	epAdminStatus
	epAdminShutdown
	epAdminBackup
	epAppSettings
	epUsers
	epUser
	epUserTokens
	epTokensRevoke
	epMessages
	epGroups
	epHistory
	epClient
	epMetrics
	epPprof
	epMsgTrace
	epSubscribe
	epRecall    // msgops.go
	epGroupOps  // groups_admin.go
	epBroadcast // broadcast.go
	epService
	epModeration
	epAppLimits
	epWebhooks
	epWebhookUpdate
	epWebhookDelete
	epWebhookDeliveries
	epWebhookRedeliver
	epBeforeSend
	epConsultations // consult.go
	epConsultation
	epConsultRecord
	epConsultRecords
	epConsultant
	epEvents
	epEventStream
	epRecv
	epUpload
	epAppUpload
	epFile
	epFileURL
	epContactsImport // contacts.go
	epUserSessions   // hostapi.go
	epUserUnread     // hostapi.go
	epUserDelete     // hostapi.go
	epDemo           // demo.go
	epDemoAPI        // demo.go
	epCount
)

// endpoints is the routing table, indexed by endpoint id. Handlers are
// method expressions: no per-request closures.
var endpoints = [epCount]endpoint{
	epHealth:        {pattern: "/healthz", auth: authNone, get: (*Server).health, allow: "GET"},
	epAdminApps:     {pattern: "/admin/v1/apps", auth: authAdmin, get: (*Server).adminApps, post: (*Server).adminCreateApp, allow: "GET, POST"},
	epAdminStatus:   {pattern: "/admin/v1/status", auth: authAdmin, get: (*Server).adminStatus, allow: "GET"},
	epAdminShutdown: {pattern: "/admin/v1/shutdown", auth: authAdmin, post: (*Server).adminShutdown, allow: "POST"},
	epAdminBackup:   {pattern: "/admin/v1/backup", auth: authAdmin, get: (*Server).adminBackup, allow: "GET"},
	epAppSettings:   {pattern: "/api/v1/app", auth: authApp, get: (*Server).appGetSettings, post: (*Server).appSetSettings, allow: "GET, POST"},
	epUsers:         {pattern: "/api/v1/users", auth: authApp, get: (*Server).appListUsers, post: (*Server).appPushUser, allow: "GET, POST"},
	epUser:          {pattern: "/api/v1/users/{uid}", auth: authApp, get: (*Server).appUser, allow: "GET"},
	epUserTokens:    {pattern: "/api/v1/users/{uid}/tokens", auth: authApp, post: (*Server).appIssueToken, allow: "POST"},
	epTokensRevoke:  {pattern: "/api/v1/tokens/revoke", auth: authApp, post: (*Server).appRevoke, allow: "POST"},
	epMessages:      {pattern: "/api/v1/messages", auth: authApp, post: (*Server).appSend, allow: "POST"},
	epGroups:        {pattern: "/api/v1/groups", auth: authApp, post: (*Server).appCreateGroup, allow: "POST"},
	epHistory:       {pattern: "/api/v1/sessions/{id}/messages", auth: authApp, get: (*Server).appHistory, allow: "GET"},
	epClient:        {pattern: "/v1/client", auth: authToken, post: (*Server).userClient, allow: "POST"},
	epMetrics:       {pattern: "/metrics", auth: authLocal, get: (*Server).metrics, allow: "GET"},
	epPprof:         {pattern: "/debug/pprof/…", auth: authLocal, get: (*Server).pprof, allow: "GET"},
	epMsgTrace:      {pattern: "/debug/msgtrace", auth: authLocal, get: (*Server).msgTrace, allow: "GET"},
	epSubscribe:     {pattern: "/admin/v1/subscribe", auth: authAdmin, get: (*Server).adminSubscribe, allow: "GET"},
	epRecall:        {pattern: "/api/v1/messages/recall", auth: authApp, post: (*Server).appRecall, allow: "POST"},
	epBroadcast:     {pattern: "/api/v1/broadcasts", auth: authApp, post: (*Server).appBroadcast, allow: "POST"},
	epGroupOps:      {pattern: "/api/v1/groups/{id}/{op}", auth: authApp, get: (*Server).appGroupGet, post: (*Server).appGroupPost, allow: "GET, POST"},
	epService:       {pattern: "/api/v1/service", auth: authApp, post: (*Server).appService, allow: "POST"},
	epModeration:    {pattern: "/api/v1/moderation", auth: authApp, get: (*Server).appModeration, post: (*Server).appModerate, allow: "GET, POST"},
	epAppLimits:     {pattern: "/api/v1/app/limits", auth: authApp, get: (*Server).appLimits, post: (*Server).appSetLimits, allow: "GET, POST"},
	// webhooks.go
	epWebhooks:          {pattern: "/api/v1/webhooks", auth: authApp, get: (*Server).appWebhooks, post: (*Server).appCreateWebhook, allow: "GET, POST"},
	epWebhookUpdate:     {pattern: "/api/v1/webhooks/update", auth: authApp, post: (*Server).appUpdateWebhook, allow: "POST"},
	epWebhookDelete:     {pattern: "/api/v1/webhooks/delete", auth: authApp, post: (*Server).appDeleteWebhook, allow: "POST"},
	epWebhookDeliveries: {pattern: "/api/v1/webhooks/deliveries", auth: authApp, get: (*Server).appWebhookDeliveries, allow: "GET"},
	epWebhookRedeliver:  {pattern: "/api/v1/webhooks/redeliver", auth: authApp, post: (*Server).appRedeliver, allow: "POST"},
	epBeforeSend:        {pattern: "/api/v1/webhooks/before-send", auth: authApp, get: (*Server).appBeforeSend, post: (*Server).appSetBeforeSend, allow: "GET, POST"},

	epConsultations:  {pattern: "/api/v1/consultations", auth: authApp, post: (*Server).appCreateConsultation, allow: "POST"},
	epConsultation:   {pattern: "/api/v1/consultations/{id}", auth: authApp, get: (*Server).appConsultation, post: (*Server).appConsultAct, allow: "GET, POST"},
	epConsultRecord:  {pattern: "/api/v1/consultations/{id}/record", auth: authApp, get: (*Server).appConsultRecord, allow: "GET"},
	epConsultRecords: {pattern: "/api/v1/consult-records", auth: authApp, get: (*Server).appConsultRecords, allow: "GET"},
	epConsultant:     {pattern: "/api/v1/consultants/{uid}", auth: authApp, get: (*Server).appConsultant, post: (*Server).appSetConsultant, allow: "GET, POST"},
	epEvents:         {pattern: "/v1/events", auth: authToken, get: (*Server).userEvents, allow: "GET"},
	epEventStream:    {pattern: "/v1/events/stream", auth: authTokenQuery, get: (*Server).userStream, allow: "GET"},
	epRecv:           {pattern: "/v1/recv", auth: authToken, get: (*Server).userRecv, allow: "GET"},
	epUpload:         {pattern: "/v1/files", auth: authToken, post: (*Server).userUpload, allow: "POST"},
	epAppUpload:      {pattern: "/api/v1/files", auth: authAppStream, post: (*Server).appUpload, allow: "POST"},
	epFile:           {pattern: "/v1/files/{id}", auth: authNone, get: (*Server).serveFile, allow: "GET"},
	epFileURL:        {pattern: "/v1/files/{id}/url", auth: authToken, get: (*Server).userFileURL, allow: "GET"},
	// contacts.go
	epContactsImport: {pattern: "/api/v1/contacts/import", auth: authApp, post: (*Server).appImportContacts, allow: "POST"},
	// hostapi.go
	epUserSessions: {pattern: "/api/v1/users/{uid}/sessions", auth: authApp, get: (*Server).appUserSessions, allow: "GET"},
	epUserUnread:   {pattern: "/api/v1/users/{uid}/unread", auth: authApp, get: (*Server).appUserUnread, allow: "GET"},
	epUserDelete:   {pattern: "/api/v1/users/{uid}/delete", auth: authApp, post: (*Server).appDeleteUser, allow: "POST"},
	// demo.go
	epDemo:    {pattern: "/demo/…", auth: authNone, get: (*Server).demoFile, allow: "GET"},
	epDemoAPI: {pattern: "/demo/api/{name}", auth: authDemo, post: (*Server).demoAPI, allow: "POST"},
}

// resolve maps a raw (still percent-encoded) request path to an endpoint
// and its path parameter, borrowed from p. Unknown paths give epNone.
func resolve(p []byte) (int, []byte) {
	switch string(p) { // a switch on string(b) does not allocate
	case "/healthz":
		return epHealth, nil
	case "/v1/client":
		return epClient, nil
	case "/v1/events":
		return epEvents, nil
	case "/v1/events/stream":
		return epEventStream, nil
	case "/v1/recv":
		return epRecv, nil
	case "/v1/files":
		return epUpload, nil
	case "/api/v1/files":
		return epAppUpload, nil
	case "/admin/v1/apps":
		return epAdminApps, nil
	case "/admin/v1/status":
		return epAdminStatus, nil
	case "/admin/v1/shutdown":
		return epAdminShutdown, nil
	case "/admin/v1/backup":
		return epAdminBackup, nil
	case "/admin/v1/subscribe":
		return epSubscribe, nil
	case "/metrics":
		return epMetrics, nil
	case "/debug/msgtrace":
		return epMsgTrace, nil
	case "/api/v1/users":
		return epUsers, nil
	case "/api/v1/app":
		return epAppSettings, nil
	case "/api/v1/tokens/revoke":
		return epTokensRevoke, nil
	case "/api/v1/messages":
		return epMessages, nil
	case "/api/v1/groups":
		return epGroups, nil
	case "/api/v1/messages/recall":
		return epRecall, nil
	case "/api/v1/broadcasts":
		return epBroadcast, nil
	case "/api/v1/service":
		return epService, nil
	case "/api/v1/moderation":
		return epModeration, nil
	case "/api/v1/app/limits":
		return epAppLimits, nil
	case "/api/v1/webhooks":
		return epWebhooks, nil
	case "/api/v1/webhooks/update":
		return epWebhookUpdate, nil
	case "/api/v1/webhooks/delete":
		return epWebhookDelete, nil
	case "/api/v1/webhooks/deliveries":
		return epWebhookDeliveries, nil
	case "/api/v1/webhooks/redeliver":
		return epWebhookRedeliver, nil
	case "/api/v1/webhooks/before-send":
		return epBeforeSend, nil
	case "/api/v1/contacts/import":
		return epContactsImport, nil
	}
	if bytes.HasPrefix(p, prefixPprof) {
		return epPprof, nil
	}
	if id, param, ok := resolveDemo(p); ok {
		return id, param
	}
	if rest, ok := bytes.CutPrefix(p, prefixGroups); ok && bytes.Count(rest, slash) == 1 {
		return epGroupOps, rest // "{id}/{op}" (groups_admin.go)
	}
	if id, param, ok := resolveConsult(p); ok {
		return id, param
	}
	if rest, ok := bytes.CutPrefix(p, prefixFiles); ok {
		id, tail, more := bytes.Cut(rest, slash)
		switch {
		case len(id) == 0:
		case !more:
			return epFile, id
		case string(tail) == "url":
			return epFileURL, id
		}
		return epNone, nil
	}
	if rest, ok := bytes.CutPrefix(p, prefixUsers); ok {
		uid, tail, more := bytes.Cut(rest, slash)
		switch {
		case len(uid) == 0:
		case !more:
			return epUser, uid
		case string(tail) == "tokens":
			return epUserTokens, uid
		case string(tail) == "sessions":
			return epUserSessions, uid
		case string(tail) == "unread":
			return epUserUnread, uid
		case string(tail) == "delete":
			return epUserDelete, uid
		}
		return epNone, nil
	}
	if rest, ok := bytes.CutPrefix(p, prefixSessions); ok {
		id, tail, more := bytes.Cut(rest, slash)
		if len(id) > 0 && more && string(tail) == "messages" {
			return epHistory, id
		}
	}
	return epNone, nil
}

var (
	prefixPprof    = []byte("/debug/pprof/")
	prefixFiles    = []byte("/v1/files/")
	prefixUsers    = []byte("/api/v1/users/")
	prefixSessions = []byte("/api/v1/sessions/")
	prefixGroups   = []byte("/api/v1/groups/")
	slash          = []byte("/")
	methodGet      = []byte(fasthttp.MethodGet)
	methodPost     = []byte(fasthttp.MethodPost)
	methodOptions  = []byte(fasthttp.MethodOptions)
)

// serveHTTP is the request handler: size check, route, method, auth, then
// the endpoint's handler.
func (s *Server) serveHTTP(ctx *fasthttp.RequestCtx) { s.serve(ctx, "") }

// serve is serveHTTP for a call from a client (from "") or forwarded by
// node from (forward.go): a route of a lease another node holds goes to
// that node once the call is authenticated.
func (s *Server) serve(ctx *fasthttp.RequestCtx, from string) {
	defer s.requests.count(ctx) // after recoverPanic has set a 500
	defer s.recoverPanic(ctx)
	if ambiguousLength(ctx.Request.Header.RawHeaders()) {
		// RFC 9112 §6.1: a request with both may be framed differently
		// by a proxy in front (request smuggling). Refuse it, and close
		// the connection so that no byte after it is read as a request.
		ctx.SetConnectionClose()
		writeError(ctx, errAmbiguousLength)
		return
	}
	path := ctx.URI().PathOriginal()
	id, param := resolve(path)
	if (id == epDemo || id == epDemoAPI) && s.demo == nil {
		id = epNone // the demo setting is off: no such paths
	}
	if id != epUpload && id != epAppUpload {
		// Bodies arrive as streams (uploads need that); every other
		// endpoint gets its body read here, at most MaxBody of it.
		if e := s.readBody(ctx); e != nil {
			ctx.SetConnectionClose() // the rest of the body is not read
			writeError(ctx, e)
			return
		}
	}
	if reservedLane(ctx) {
		// A slot beyond MaxConns (admit.go): serve what the operator and
		// health checks need, then free it.
		ctx.SetConnectionClose()
		if id == epNone || !onReservedLane(id) {
			writeError(ctx, errBusy)
			return
		}
	}
	if id == epNone {
		writeError(ctx, chat.Errf(chat.CodeNotFound,
			"no such endpoint: "+string(ctx.Method())+" "+string(path)))
		return
	}
	if from != "" && routeRuns[id] == onAnyNode {
		writeError(ctx, errNotForwarded)
		return
	}
	ep := &endpoints[id]
	user := ep.auth == authToken || ep.auth == authTokenQuery || id == epFile
	if user {
		if bytes.Equal(ctx.Method(), methodOptions) {
			s.preflight(ctx, ep) // poll.go
			return
		}
		s.cors(ctx) // on every answer, errors included, so the page can read them
	}
	var h handlerFunc
	switch m := ctx.Method(); {
	case bytes.Equal(m, methodGet):
		h = ep.get
	case bytes.Equal(m, methodPost):
		h = ep.post
	}
	if h == nil {
		ctx.Response.Header.Set(fasthttp.HeaderAllow, ep.allow)
		writeErrorStatus(ctx, fasthttp.StatusMethodNotAllowed, chat.Errf(chat.CodeBadRequest,
			"method "+string(ctx.Method())+" not allowed on "+ep.pattern+"; use "+ep.allow))
		return
	}

	r := reqInfo{from: from}
	if param != nil {
		p, err := url.PathUnescape(string(param))
		if err != nil {
			writeError(ctx, chat.Errf(chat.CodeBadRequest, "bad escape in path segment \""+string(param)+"\""))
			return
		}
		r.param = p
	}
	switch ep.auth {
	case authLocal:
		if !s.cfg.AdminFromAnywhere && !s.clientIP(ctx).IsLoopback() {
			s.denied(ctx, errLocalOnly)
			return
		}
	case authDemo:
		if e := demo.Allowed(s.clientIP(ctx), string(ctx.Host())); e != nil {
			s.denied(ctx, e)
			return
		}
	case authAdmin:
		if e := s.authAdmin(ctx); e != nil {
			s.denied(ctx, e)
			return
		}
	case authApp:
		app, err := s.authApp(ctx)
		if err != nil {
			s.deny(ctx, err)
			return
		}
		r.app = app
	case authAppStream:
		app, mac, err := s.authAppStream(ctx)
		if err != nil {
			ctx.SetConnectionClose() // its body is not read
			s.deny(ctx, err)
			return
		}
		r.app, r.bodyMAC = app, mac
	case authToken, authTokenQuery:
		ident, err := s.authToken(ctx, ep.auth == authTokenQuery)
		if err != nil {
			s.deny(ctx, err)
			return
		}
		r.ident = ident
	}
	if on := routeRuns[id]; (on == onDomains || on == onWebhooks) && s.elsewhere(ctx, on, from) {
		return // forward.go
	}
	if err := h(s, ctx, &r); err != nil {
		s.fail(ctx, err)
	}
}

// readBody reads a (non-upload) request's body into memory, refusing it
// past MaxBody: from its Content-Length before reading, or (chunked) as
// soon as the count passes the limit.
func (s *Server) readBody(ctx *fasthttp.RequestCtx) *chat.Error {
	if cl := ctx.Request.Header.ContentLength(); cl > s.cfg.MaxBody {
		return s.tooLarge()
	}
	if !ctx.Request.IsBodyStream() {
		if len(ctx.Request.Body()) > s.cfg.MaxBody {
			return s.tooLarge()
		}
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(ctx.RequestBodyStream(), int64(s.cfg.MaxBody)+1))
	if err != nil {
		return chat.Errf(chat.CodeBadRequest, "request body is truncated")
	}
	if len(b) > s.cfg.MaxBody {
		return s.tooLarge()
	}
	ctx.Request.SetBody(b)
	return nil
}

var errAmbiguousLength = chat.Errf(chat.CodeBadRequest,
	"request has both Content-Length and Transfer-Encoding; send one")

var (
	hdrContentLength    = []byte("content-length")
	hdrTransferEncoding = []byte("transfer-encoding")
)

// ambiguousLength reports whether raw (a request's header lines as
// received) holds both a Content-Length and a Transfer-Encoding line.
// fasthttp keeps only one of the two after parsing, so the raw lines are
// the only place the conflict shows (after a chunked body is read,
// ContentLength reports its decoded size).
func ambiguousLength(raw []byte) bool {
	var cl, te bool
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		name, _, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		name = bytes.TrimSpace(name)
		switch {
		case bytes.EqualFold(name, hdrContentLength):
			cl = true
		case bytes.EqualFold(name, hdrTransferEncoding):
			te = true
		}
	}
	return cl && te
}

// deny answers an authentication error: a *chat.Error is a denial (logged
// at debug), anything else an internal failure.
func (s *Server) deny(ctx *fasthttp.RequestCtx, err error) {
	var ce *chat.Error
	if errors.As(err, &ce) && ce.Code.HTTPStatus() < 500 {
		s.denied(ctx, ce)
		return
	}
	s.fail(ctx, err)
}

// recoverPanic turns a panic in a handler or in the core into a 500 and an
// error log line instead of a dead process.
func (s *Server) recoverPanic(ctx *fasthttp.RequestCtx) {
	if v := recover(); v != nil {
		s.log.Error().Str("method", string(ctx.Method())).Bytes("path", ctx.Path()).
			Interface("panic", v).Bytes("stack", debug.Stack()).Msg("http api: handler panicked")
		writeError(ctx, chat.Errf(chat.CodeInternal, "internal error"))
	}
}
