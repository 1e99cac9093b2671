package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"strings"

	"chatd/chat"
)

// App is the demo app's id. The backend creates it on the first setup.
const App = "demo"

// User is one demo user.
type User struct {
	UID      string `json:"uid"`
	Nickname string `json:"nickname"`
	// Role is "user" for the chat demo's people and "agent" for the demo
	// shop's agents.
	Role string `json:"role"`
}

// Users are the demo app's users, created by setup.
var Users = []User{
	{UID: "alice", Nickname: "Alice", Role: "user"},
	{UID: "bob", Nickname: "Bob", Role: "user"},
	{UID: "carol", Nickname: "Carol", Role: "user"},
	{UID: "sam", Nickname: "Sam (ACME)", Role: "agent"},
	{UID: "kim", Nickname: "Kim (ACME)", Role: "agent"},
}

// Shop is the demo shop of the customer-service pages
// (docs/customer-service.md); its agents are the users of role "agent".
var Shop = ShopInfo{ID: "acme", Name: "ACME Store", Agents: []string{"sam", "kim"}}

// ShopInfo describes the demo shop.
type ShopInfo struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Agents []string `json:"agents"`
}

// Backend answers the demo pages' calls (POST /demo/api/{name}). Every
// call is for callers on the server's machine only: httpapi checks
// Allowed first.
type Backend struct {
	Core *chat.Core
	// WSAddr reports the WebSocket listener's address (host:port), for
	// the ws_url the pages connect to. Nil means ":22886".
	WSAddr func() string
}

// Request is one call: its JSON body (may be empty) and the Host the page
// was loaded from (for URLs the page can reach).
type Request struct {
	Body []byte
	Host string
}

// calls are the backend's calls by name. A page that needs more adds its
// call here.
var calls = map[string]func(b *Backend, ctx context.Context, r *Request) (any, error){
	"setup": (*Backend).setup,
	"token": (*Backend).token,
}

// Call runs the call name; an unknown name is not_found.
func (b *Backend) Call(ctx context.Context, name string, r *Request) (any, error) {
	f, ok := calls[name]
	if !ok {
		return nil, chat.Errf(chat.CodeNotFound, "no demo call \""+clip(name)+"\"; the calls are setup and token (docs/demo.md)")
	}
	return f(b, ctx, r)
}

// Setup is the answer of setup.
type Setup struct {
	App   string   `json:"app"`
	WSURL string   `json:"ws_url"`
	Users []User   `json:"users"`
	Shop  ShopInfo `json:"shop"`
}

// setup creates what is missing of the demo app, its users and its shop;
// on a server that has them it writes nothing.
func (b *Backend) setup(ctx context.Context, r *Request) (any, error) {
	if err := b.Setup(ctx); err != nil {
		return nil, err
	}
	return Setup{App: App, WSURL: b.wsURL(r.Host), Users: Users, Shop: Shop}, nil
}

// Setup creates (idempotently) the demo app, its users and the demo shop
// with its agents.
func (b *Backend) Setup(ctx context.Context) error {
	if _, err := b.Core.CreateApp(ctx, App, "chatd demo"); err != nil && !hasCode(err, chat.CodeConflict) {
		return err
	}
	for _, u := range Users {
		if _, err := b.Core.User(ctx, App, u.UID); err == nil {
			continue
		} else if !hasCode(err, chat.CodeNotFound) {
			return err
		}
		if _, err := b.Core.PushUser(ctx, App, chat.UserInput{UID: u.UID, Nickname: u.Nickname, Keep: chat.FieldAvatar | chat.FieldExtra}); err != nil {
			return err
		}
	}
	if _, err := b.service(ctx, map[string]any{"action": "shop", "shop": Shop.ID}); hasCode(err, chat.CodeNotFound) {
		_, err = b.service(ctx, map[string]any{"action": "shop_put", "shop": Shop.ID, "name": Shop.Name,
			"settings": map[string]any{"strategy": "balanced", "welcome": "Hi! This is the ACME demo shop. How can we help?",
				"offline": "All our agents are busy right now. You are in the queue: someone will be with you shortly."}})
		if err != nil {
			return err
		}
		for _, uid := range Shop.Agents {
			if _, err := b.service(ctx, map[string]any{"action": "agent_put", "shop": Shop.ID, "uid": uid,
				"capacity": 5, "status": "online"}); err != nil {
				return err
			}
		}
	} else if err != nil {
		return err
	}
	// The agent console's canned replies, when the shop has none.
	if have, err := b.service(ctx, map[string]any{"action": "canned", "shop": Shop.ID}); err != nil {
		return err
	} else if list, ok := have.([]chat.Canned); ok && len(list) == 0 {
		for _, c := range Canned {
			if _, err := b.service(ctx, map[string]any{"action": "canned_put", "shop": Shop.ID, "shortcut": c[0], "text": c[1]}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Canned are the demo shop's canned replies (shortcut, text), created by
// setup when the shop has none.
var Canned = [][2]string{
	{"hello", "Hello! Thanks for contacting ACME. Let me have a look."},
	{"refund", "Refunds reach your account within 5 working days of us receiving the item."},
	{"shipping", "Orders ship within 24 hours; delivery takes 2 to 3 working days."},
	{"thanks", "Thanks for shopping with ACME. Have a great day!"},
}

func (b *Backend) service(ctx context.Context, req map[string]any) (any, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	return b.Core.ServiceHost(ctx, App, body)
}

// TokenRequest is the body of token.
type TokenRequest struct {
	UID string `json:"uid"`
}

// Token is the answer of token: what a page needs to log in.
type Token struct {
	App       string `json:"app"`
	UID       string `json:"uid"`
	Token     string `json:"token"`
	ExpiresAt int64  `json:"expires_at"`
	WSURL     string `json:"ws_url"`
}

// token issues a chat token for one demo user (setup must have run).
func (b *Backend) token(ctx context.Context, r *Request) (any, error) {
	var in TokenRequest
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return nil, chat.Errf(chat.CodeBadRequest, "body must be {\"uid\": \"alice\"}: "+err.Error())
	}
	if !isDemoUser(in.UID) {
		return nil, chat.Errf(chat.CodeBadRequest, "\""+clip(in.UID)+"\" is not a demo user; the demo users are "+demoUIDs())
	}
	g, err := b.Core.IssueToken(ctx, App, in.UID, 0)
	if hasCode(err, chat.CodeNotFound) {
		return nil, chat.Errf(chat.CodeNotFound, "the demo is not set up on this server yet: POST /demo/api/setup first")
	}
	if err != nil {
		return nil, err
	}
	return Token{App: App, UID: in.UID, Token: g.Token, ExpiresAt: g.ExpiresAt, WSURL: b.wsURL(r.Host)}, nil
}

func isDemoUser(uid string) bool {
	for _, u := range Users {
		if u.UID == uid {
			return true
		}
	}
	return false
}

func demoUIDs() string {
	s := make([]string, len(Users))
	for i, u := range Users {
		s[i] = u.UID
	}
	return strings.Join(s, ", ")
}

// wsURL is the WebSocket URL a page loaded from host reaches: the
// listener's own host when it is bound to one, else the page's.
func (b *Backend) wsURL(host string) string {
	addr := ":22886"
	if b.WSAddr != nil {
		addr = b.WSAddr()
	}
	h, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if ip, err := netip.ParseAddr(h); h == "" || (err == nil && ip.IsUnspecified()) {
		h = hostOnly(host)
		if h == "" {
			h = "127.0.0.1"
		}
	}
	return "ws://" + net.JoinHostPort(h, port) + "/"
}

// hostOnly strips the port (and an IPv6 literal's brackets) from a Host
// header.
func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
}

// Error codes of Allowed.
var (
	errNotLoopback = chat.Errf(chat.CodeForbidden,
		"the demo backend answers callers on the server's own machine only (127.0.0.1, ::1): open the demo there, e.g. http://127.0.0.1:22887/demo/ (docs/demo.md)")
	errNotLocalHost = chat.Errf(chat.CodeForbidden,
		"the demo backend answers pages loaded from 127.0.0.1, [::1] or localhost only (the Host header names another host)")
)

// Allowed reports whether a demo call may be answered: the caller (peer,
// after trusted proxies) is on a loopback address, and the page was
// loaded from a loopback host, not from a name that resolves there (DNS
// rebinding). It returns the forbidden error to answer otherwise.
func Allowed(peer netip.Addr, host string) *chat.Error {
	if !peer.IsValid() || !peer.Unmap().IsLoopback() {
		return errNotLoopback
	}
	h := hostOnly(host)
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return nil
	}
	if ip, err := netip.ParseAddr(h); err == nil && ip.Unmap().IsLoopback() {
		return nil
	}
	return errNotLocalHost
}

func hasCode(err error, code chat.Code) bool {
	var ce *chat.Error
	return errors.As(err, &ce) && ce.Code == code
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
