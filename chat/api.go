package chat

import (
	"context"
	"encoding/json"
	"time"
)

// This file is the core's Go API as the HTTP side uses it. Every method is
// safe for concurrent use and may block on the store; never call one from an
// event loop. Errors a client should see are *Error; anything else is an
// internal failure.

// UserInput is what the host backend pushes for a user.
type UserInput struct {
	UID      string          `json:"uid"`
	Nickname string          `json:"nickname"`
	Avatar   string          `json:"avatar,omitempty"`
	Extra    json.RawMessage `json:"extra,omitempty"`
}

// TokenGrant is a freshly issued chat token. The token string is shown once;
// only its hash is stored.
type TokenGrant struct {
	Token     string `json:"token"`
	ExpiresAt int64  `json:"expires_at"` // unix ms
}

// SendInput is one message to send. Exactly one of To and Session names the
// target. From is the sender's uid; empty From sends a system notice (then
// To names the user whose system session receives it, or Session a group).
type SendInput struct {
	From    string          `json:"from"`
	To      string          `json:"to,omitempty"`
	Session SessionID       `json:"session_id,omitempty"`
	Type    string          `json:"type"`
	Content json.RawMessage `json:"content"`
	CID     string          `json:"cid,omitempty"`
}

// SendResult acknowledges a durable message. Duplicate is true when CID
// matched an earlier send and nothing new was stored.
type SendResult struct {
	Session   SessionID `json:"session_id"`
	Seq       uint64    `json:"seq"`
	MsgID     string    `json:"msg_id"`
	CreatedAt int64     `json:"created_at"`
	Duplicate bool      `json:"duplicate,omitempty"`
}

// GroupInput creates a group.
type GroupInput struct {
	Owner   string   `json:"owner"`
	Name    string   `json:"name"`
	Avatar  string   `json:"avatar,omitempty"`
	Members []string `json:"members"`
}

// Identity is a logged-in user (one device).
type Identity struct {
	App string
	UID string
}

var _ = time.Second
var _ = context.Background
