package httpapi

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"chatd/chat"
)

// Request and reply bodies of the endpoints that are not a chat type as is.

// Health is the answer of GET /healthz.
type Health struct {
	Status  string `json:"status"`
	Version string `json:"version"`
}

// CreateAppRequest is the body of POST /admin/v1/apps. An empty ID lets the
// core pick one.
type CreateAppRequest struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name"`
}

// AppList is the answer of GET /admin/v1/apps (secrets included: the admin
// API is the place to read them).
type AppList struct {
	Apps []chat.App `json:"apps"`
}

// ShutdownReply is the answer of POST /admin/v1/shutdown.
type ShutdownReply struct {
	Stopping bool `json:"stopping"`
}

// PushUserRequest is the body of POST /api/v1/users: the user (created or
// updated) and optionally a token to issue in the same call. A field left
// out keeps the stored value; null clears it like "". TokenTTL is in
// seconds; zero means the core's default lifetime.
type PushUserRequest struct {
	UID        string          `json:"uid"`
	Nickname   optString       `json:"nickname"`
	Avatar     optString       `json:"avatar"`
	Extra      json.RawMessage `json:"extra,omitempty"` // nil: left out; "null": clear
	IssueToken bool            `json:"issue_token,omitempty"`
	TokenTTL   int64           `json:"token_ttl,omitempty"`
	// Token is a token the host chose for the user (hostapi.go), stored
	// like an issued one; instead of issue_token.
	Token string `json:"token,omitempty"`
}

// optString is a string field that tells "left out" (Set false) from
// given, null counting as given and empty.
type optString struct {
	Set   bool
	Value string
}

func (o *optString) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		o.Value = ""
		return nil
	}
	err := json.Unmarshal(b, &o.Value)
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		te.Offset = 0 // counted within the field, not the body: say none
	}
	return err
}

// PushUserReply is the answer of POST /api/v1/users. Token and ExpiresAt
// (unix ms) are set only when a token was asked for.
type PushUserReply struct {
	User      chat.User `json:"user"`
	Token     string    `json:"token,omitempty"`
	ExpiresAt int64     `json:"expires_at,omitempty"`
}

// IssueTokenRequest is the optional body of POST /api/v1/users/{uid}/tokens.
// TTL is in seconds; zero means the core's default lifetime.
type IssueTokenRequest struct {
	TTL int64 `json:"ttl,omitempty"`
}

// RevokeRequest is the body of POST /api/v1/tokens/revoke: exactly one of
// Token (that token) or UID (every token of the user).
type RevokeRequest struct {
	Token string `json:"token,omitempty"`
	UID   string `json:"uid,omitempty"`
}

// RevokeReply is the answer of POST /api/v1/tokens/revoke. Kicked is how
// many connected devices were disconnected.
type RevokeReply struct {
	Revoked bool `json:"revoked"`
	Kicked  int  `json:"kicked"`
}

// HistoryReply is the answer of GET /api/v1/sessions/{id}/messages,
// ascending by seq.
type HistoryReply struct {
	Messages []chat.Message `json:"messages"`
	HasMore  bool           `json:"has_more"`
}

func (s *Server) health(ctx *fasthttp.RequestCtx, _ *reqInfo) error {
	s.writeData(ctx, fasthttp.StatusOK, Health{Status: "ok", Version: s.cfg.Version})
	return nil
}

func (s *Server) adminCreateApp(ctx *fasthttp.RequestCtx, _ *reqInfo) error {
	var in CreateAppRequest
	if e := decodeJSON(ctx.PostBody(), &in, false); e != nil {
		return e
	}
	if in.Name == "" {
		return missing("name")
	}
	app, err := s.core.CreateApp(s.reqCtx, in.ID, in.Name)
	if err != nil {
		return err
	}
	s.log.Info().Str("app", app.ID).Str("name", app.Name).Msg("http api: app created")
	s.writeData(ctx, fasthttp.StatusOK, app)
	return nil
}

func (s *Server) adminApps(ctx *fasthttp.RequestCtx, _ *reqInfo) error {
	apps, err := s.core.Apps(s.reqCtx)
	if err != nil {
		return err
	}
	if apps == nil {
		apps = []chat.App{}
	}
	s.writeData(ctx, fasthttp.StatusOK, AppList{Apps: apps})
	return nil
}

func (s *Server) adminStatus(ctx *fasthttp.RequestCtx, _ *reqInfo) error {
	s.writeData(ctx, fasthttp.StatusOK, s.status())
	return nil
}

// adminShutdown answers 202 and calls Config.Shutdown once the reply is
// written: the connection is marked close, and fasthttp's ConnState hook
// sees it close after the write. A fallback timer covers connections that
// never report (handler used without a fasthttp.Server).
func (s *Server) adminShutdown(ctx *fasthttp.RequestCtx, _ *reqInfo) error {
	if s.cfg.Shutdown == nil {
		return chat.Errf(chat.CodeUnavailable, "this server cannot be shut down over HTTP")
	}
	s.writeData(ctx, fasthttp.StatusAccepted, ShutdownReply{Stopping: true})
	ctx.SetConnectionClose()
	c := ctx.Conn()
	if c != nil {
		s.shutConn.Store(&c)
	}
	time.AfterFunc(shutdownFallback, s.triggerShutdown)
	return nil
}

func (s *Server) appPushUser(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	var in PushUserRequest
	if e := decodeJSON(ctx.PostBody(), &in, false); e != nil {
		return e
	}
	if in.UID == "" {
		return missing("uid")
	}
	ttl, err := chat.TokenTTLSeconds("token_ttl", in.TokenTTL)
	if err != nil {
		return err
	}
	if in.TokenTTL != 0 && !in.IssueToken && in.Token == "" {
		return chat.Errf(chat.CodeBadRequest, "token_ttl given without \"issue_token\": true")
	}
	if in.IssueToken && in.Token != "" {
		return chat.Errf(chat.CodeBadRequest, "give \"issue_token\" or your own \"token\", not both")
	}
	ui := chat.UserInput{UID: in.UID, Nickname: in.Nickname.Value, Avatar: in.Avatar.Value, Extra: in.Extra}
	if !in.Nickname.Set {
		ui.Keep |= chat.FieldNickname
	}
	if !in.Avatar.Set {
		ui.Keep |= chat.FieldAvatar
	}
	switch {
	case in.Extra == nil:
		ui.Keep |= chat.FieldExtra
	case string(in.Extra) == "null":
		ui.Extra = nil
	}
	u, err := s.core.PushUser(s.reqCtx, r.app, ui)
	if err != nil {
		return err
	}
	out := PushUserReply{User: u}
	if in.Token != "" {
		g, err := s.core.SetToken(s.reqCtx, r.app, u.UID, in.Token, ttl)
		if err != nil {
			return err
		}
		out.Token, out.ExpiresAt = g.Token, g.ExpiresAt
	}
	if in.IssueToken {
		g, err := s.core.IssueToken(s.reqCtx, r.app, u.UID, ttl)
		if err != nil {
			return err
		}
		out.Token, out.ExpiresAt = g.Token, g.ExpiresAt
	}
	s.writeData(ctx, fasthttp.StatusOK, out)
	return nil
}

func (s *Server) appUser(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	u, err := s.core.User(s.reqCtx, r.app, r.param)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, u)
	return nil
}

func (s *Server) appIssueToken(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	var in IssueTokenRequest
	if e := decodeJSON(ctx.PostBody(), &in, true); e != nil {
		return e
	}
	ttl, err := chat.TokenTTLSeconds("ttl", in.TTL)
	if err != nil {
		return err
	}
	g, err := s.core.IssueToken(s.reqCtx, r.app, r.param, ttl)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, g)
	return nil
}

func (s *Server) appRevoke(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	var in RevokeRequest
	if e := decodeJSON(ctx.PostBody(), &in, false); e != nil {
		return e
	}
	switch {
	case in.Token == "" && in.UID == "":
		return chat.Errf(chat.CodeBadRequest, "missing field \"token\" or \"uid\"")
	case in.Token != "" && in.UID != "":
		return chat.Errf(chat.CodeBadRequest, "give only one of \"token\" and \"uid\"")
	case in.Token != "":
		n, err := s.core.RevokeToken(s.reqCtx, r.app, in.Token)
		if err != nil {
			return err
		}
		s.writeData(ctx, fasthttp.StatusOK, RevokeReply{Revoked: true, Kicked: n})
	default:
		n, err := s.core.RevokeUserTokens(s.reqCtx, r.app, in.UID)
		if err != nil {
			return err
		}
		s.writeData(ctx, fasthttp.StatusOK, RevokeReply{Revoked: true, Kicked: n})
	}
	return nil
}

func (s *Server) appSend(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	var in chat.SendInput
	if e := decodeJSON(ctx.PostBody(), &in, false); e != nil {
		return e
	}
	switch {
	case in.To == "" && in.Session == 0:
		return chat.Errf(chat.CodeBadRequest, "missing field \"to\" or \"session_id\"")
	case in.To != "" && in.Session != 0:
		return chat.Errf(chat.CodeBadRequest, "give only one of \"to\" and \"session_id\"")
	case in.Type == "":
		return missing("type")
	case len(in.Content) == 0 || string(in.Content) == "null":
		return missing("content")
	}
	if in.Session != 0 && s.core.DomainSession(s.reqCtx, r.app, in.Session) && s.elsewhere(ctx, onDomains, r.from) {
		return nil // forwarded to the domains' owner, or refused (forward.go)
	}
	res, err := s.core.Send(s.reqCtx, r.app, in)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, res)
	return nil
}

func (s *Server) appCreateGroup(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	var in chat.GroupInput
	if e := decodeJSON(ctx.PostBody(), &in, false); e != nil {
		return e
	}
	if in.Owner == "" {
		return missing("owner")
	}
	sess, err := s.core.CreateGroup(s.reqCtx, r.app, in)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, sess)
	return nil
}

func (s *Server) appHistory(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	id, err := strconv.ParseUint(r.param, 10, 64)
	if err != nil || id == 0 {
		return chat.Errf(chat.CodeBadRequest, "bad session id \""+r.param+"\": want a positive integer")
	}
	args := ctx.QueryArgs()
	var before uint64
	if b := args.Peek("before"); len(b) > 0 {
		if before, err = strconv.ParseUint(string(b), 10, 64); err != nil {
			return chat.Errf(chat.CodeBadRequest, "bad query parameter \"before\": want a non-negative integer")
		}
	}
	var limit int
	if b := args.Peek("limit"); len(b) > 0 {
		if limit, err = strconv.Atoi(string(b)); err != nil || limit < 0 {
			return chat.Errf(chat.CodeBadRequest, "bad query parameter \"limit\": want a non-negative integer")
		}
	}
	msgs, more, err := s.core.History(s.reqCtx, r.app, chat.SessionID(id), before, limit)
	if err != nil {
		return err
	}
	if msgs == nil {
		msgs = []chat.Message{}
	}
	s.writeData(ctx, fasthttp.StatusOK, HistoryReply{Messages: msgs, HasMore: more})
	return nil
}

// userClient runs one client action exactly as over WebSocket and answers
// the core's reply JSON verbatim with 200 (the reply carries its own ok or
// error).
func (s *Server) userClient(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	body := ctx.PostBody()
	if len(body) == 0 {
		return chat.Errf(chat.CodeBadRequest, "request body is empty; expected one client action JSON object")
	}
	writeRaw(ctx, s.core.Do(s.reqCtx, r.ident, body))
	return nil
}

// appService runs one customer-service action of the host (shops, agents,
// conversations; docs/customer-service.md): the body is {"action": …}.
func (s *Server) appService(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	body := ctx.PostBody()
	if len(body) == 0 {
		return chat.Errf(chat.CodeBadRequest, "request body is empty; expected {\"action\": …} (docs/customer-service.md)")
	}
	res, err := s.core.ServiceHost(s.reqCtx, r.app, body)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, res)
	return nil
}
