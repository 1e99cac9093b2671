package apiclient

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// The types below mirror the server's JSON (docs/http-api.md). They are
// declared here, not imported, so that clients do not link the server.

// Health is GET /healthz.
type Health struct {
	Status  string `json:"status"`
	Version string `json:"version"`
}

// App is a host site or app. Secret signs its API requests.
type App struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Secret    string `json:"secret"`
	CreatedAt int64  `json:"created_at"` // unix ms
}

// Status is GET /admin/v1/status.
type Status struct {
	Version       string `json:"version"`
	PID           int    `json:"pid"`
	StartedAt     int64  `json:"started_at"` // unix seconds
	UptimeSeconds int64  `json:"uptime_seconds"`
	WSAddr        string `json:"ws_addr"`
	HTTPAddr      string `json:"http_addr"`
	DataDir       string `json:"data_dir"`
	Conns         int    `json:"conns"`
	UsersOnline   int    `json:"users_online"`
	Goroutines    int    `json:"goroutines"`
	HeapBytes     uint64 `json:"heap_bytes"`
	RSSBytes      uint64 `json:"rss_bytes"`
	// PresenceEvents counts presence events queued to devices since the
	// server started.
	PresenceEvents uint64 `json:"presence_events"`
	// Cluster is set on a node of a cluster (clusterstatus.go).
	Cluster *ClusterStatus `json:"cluster,omitempty"`
}

// User is a host site's user as chatd stores it.
type User struct {
	App       string          `json:"app"`
	UID       string          `json:"uid"`
	Nickname  string          `json:"nickname"`
	Avatar    string          `json:"avatar,omitempty"`
	Extra     json.RawMessage `json:"extra,omitempty"`
	CreatedAt int64           `json:"created_at"`
	UpdatedAt int64           `json:"updated_at"`
}

// PushUserInput is POST /api/v1/users: create or update a user, and with
// IssueToken also issue a chat token (TokenTTL zero: the server default).
type PushUserInput struct {
	UID        string          `json:"uid"`
	Nickname   string          `json:"nickname,omitempty"`
	Avatar     string          `json:"avatar,omitempty"`
	Extra      json.RawMessage `json:"extra,omitempty"`
	IssueToken bool            `json:"issue_token,omitempty"`
	TokenTTL   int64           `json:"token_ttl,omitempty"` // seconds
}

// PushUserResult is the answer of PushUser; Token is empty unless asked.
type PushUserResult struct {
	User      User   `json:"user"`
	Token     string `json:"token,omitempty"`
	ExpiresAt int64  `json:"expires_at,omitempty"` // unix ms
}

// TokenGrant is a freshly issued chat token.
type TokenGrant struct {
	Token     string `json:"token"`
	ExpiresAt int64  `json:"expires_at"` // unix ms
}

// RevokeResult is the answer of a revoke: how many connected devices were
// disconnected.
type RevokeResult struct {
	Revoked bool `json:"revoked"`
	Kicked  int  `json:"kicked"`
}

// SendInput is one message. Exactly one of To and Session; empty From sends
// a system notice.
type SendInput struct {
	From    string          `json:"from"`
	To      string          `json:"to,omitempty"`
	Session uint64          `json:"session_id,omitempty"`
	Type    string          `json:"type"`
	Content json.RawMessage `json:"content"`
	CID     string          `json:"cid,omitempty"`
	// CreatedAt (unix ms), when not zero, keeps an imported message's
	// original time: not in the future, not before the session's last
	// message.
	CreatedAt int64 `json:"created_at,omitempty"`
}

// SendResult acknowledges a durable message.
type SendResult struct {
	Session   uint64 `json:"session_id"`
	Seq       uint64 `json:"seq"`
	MsgID     string `json:"msg_id"`
	CreatedAt int64  `json:"created_at"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

// GroupInput creates a group.
type GroupInput struct {
	Owner   string   `json:"owner"`
	Name    string   `json:"name"`
	Avatar  string   `json:"avatar,omitempty"`
	Members []string `json:"members"`
}

// Session is a conversation's record. Kind is 1 private, 2 group, 3 system.
type Session struct {
	ID          uint64    `json:"id"`
	App         string    `json:"app"`
	Kind        int       `json:"kind"`
	Name        string    `json:"name,omitempty"`
	Avatar      string    `json:"avatar,omitempty"`
	Owner       string    `json:"owner,omitempty"`
	Pair        [2]string `json:"pair,omitempty"`
	CreatedAt   int64     `json:"created_at"`
	LastSeq     uint64    `json:"last_seq"`
	LastAt      int64     `json:"last_at,omitempty"`
	LastFrom    string    `json:"last_from,omitempty"`
	LastType    string    `json:"last_type,omitempty"`
	LastPreview string    `json:"last_preview,omitempty"`
}

// Message is one stored message. From is empty for system notices.
type Message struct {
	Session   uint64          `json:"session_id"`
	Seq       uint64          `json:"seq"`
	App       string          `json:"app"`
	From      string          `json:"from"`
	Type      string          `json:"type"`
	Content   json.RawMessage `json:"content"`
	CID       string          `json:"cid,omitempty"`
	CreatedAt int64           `json:"created_at"`
}

// Health checks GET /healthz (no authentication).
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	err := c.Do(ctx, http.MethodGet, "/healthz", nil, &h)
	return h, err
}

// CreateApp registers an app (admin). An empty id lets the server pick one.
func (c *Client) CreateApp(ctx context.Context, id, name string) (App, error) {
	var a App
	err := c.Do(ctx, http.MethodPost, "/admin/v1/apps", struct {
		ID   string `json:"id,omitempty"`
		Name string `json:"name"`
	}{id, name}, &a)
	return a, err
}

// Apps lists every app with its secret (admin).
func (c *Client) Apps(ctx context.Context) ([]App, error) {
	var out struct {
		Apps []App `json:"apps"`
	}
	err := c.Do(ctx, http.MethodGet, "/admin/v1/apps", nil, &out)
	return out.Apps, err
}

// Status reads the server status (admin).
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.Do(ctx, http.MethodGet, "/admin/v1/status", nil, &st)
	return st, err
}

// Shutdown asks the server to stop (admin). It returns once the server has
// accepted the request; the process stops shortly after.
func (c *Client) Shutdown(ctx context.Context) error {
	return c.Do(ctx, http.MethodPost, "/admin/v1/shutdown", nil, nil)
}

// PushUser creates or updates a user, optionally issuing a token.
func (c *Client) PushUser(ctx context.Context, in PushUserInput) (PushUserResult, error) {
	var r PushUserResult
	err := c.Do(ctx, http.MethodPost, "/api/v1/users", in, &r)
	return r, err
}

// User reads one user.
func (c *Client) User(ctx context.Context, uid string) (User, error) {
	var u User
	err := c.Do(ctx, http.MethodGet, "/api/v1/users/"+url.PathEscape(uid), nil, &u)
	return u, err
}

// IssueToken issues a chat token for an existing user; ttl zero means the
// server default. ttl is sent in whole seconds.
func (c *Client) IssueToken(ctx context.Context, uid string, ttl time.Duration) (TokenGrant, error) {
	var g TokenGrant
	body := struct {
		TTL int64 `json:"ttl,omitempty"`
	}{int64(ttl / time.Second)}
	err := c.Do(ctx, http.MethodPost, "/api/v1/users/"+url.PathEscape(uid)+"/tokens", body, &g)
	return g, err
}

// RevokeToken revokes one token; its connections are closed.
func (c *Client) RevokeToken(ctx context.Context, token string) (RevokeResult, error) {
	var r RevokeResult
	err := c.Do(ctx, http.MethodPost, "/api/v1/tokens/revoke", struct {
		Token string `json:"token"`
	}{token}, &r)
	return r, err
}

// RevokeUserTokens revokes every token of a user and closes all of the
// user's connections; it returns how many were closed.
func (c *Client) RevokeUserTokens(ctx context.Context, uid string) (int, error) {
	var r RevokeResult
	err := c.Do(ctx, http.MethodPost, "/api/v1/tokens/revoke", struct {
		UID string `json:"uid"`
	}{uid}, &r)
	return r.Kicked, err
}

// Send sends a message as a user, or a system notice with empty From.
func (c *Client) Send(ctx context.Context, in SendInput) (SendResult, error) {
	var r SendResult
	err := c.Do(ctx, http.MethodPost, "/api/v1/messages", in, &r)
	return r, err
}

// CreateGroup creates a group.
func (c *Client) CreateGroup(ctx context.Context, in GroupInput) (Session, error) {
	var s Session
	err := c.Do(ctx, http.MethodPost, "/api/v1/groups", in, &s)
	return s, err
}

// History reads a page of a session's messages older than before (0: the
// newest), oldest first; limit zero means the server default.
func (c *Client) History(ctx context.Context, session, before uint64, limit int) ([]Message, error) {
	q := url.Values{}
	if before > 0 {
		q.Set("before", strconv.FormatUint(before, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	p := "/api/v1/sessions/" + strconv.FormatUint(session, 10) + "/messages"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	var out struct {
		Messages []Message `json:"messages"`
	}
	err := c.Do(ctx, http.MethodGet, p, nil, &out)
	return out.Messages, err
}
