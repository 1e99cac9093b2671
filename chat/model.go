package chat

import "encoding/json"

// SessionID names a conversation: a private pair, a group or a user's system
// notice channel. IDs are allocated by the core, never reused.
type SessionID uint64

// Kind is what a session is.
type Kind uint8

const (
	KindPrivate Kind = iota + 1 // two users; found by the pair
	KindGroup                   // any number of members with roles
	KindSystem                  // one user; system notices from the host site
)

func (k Kind) String() string {
	switch k {
	case KindPrivate:
		return "private"
	case KindGroup:
		return "group"
	case KindSystem:
		return "system"
	case KindBroadcast:
		return "broadcast"
	case KindConsult:
		return "consult"
	case KindService:
		return "service"
	}
	return "unknown"
}

// Role is a member's standing in a session.
type Role uint8

const (
	RoleMember Role = iota + 1
	RoleAdmin
	RoleOwner
)

func (r Role) String() string {
	switch r {
	case RoleMember:
		return "member"
	case RoleAdmin:
		return "admin"
	case RoleOwner:
		return "owner"
	}
	return "unknown"
}

// App is one host site or app. Its Secret signs the server API.
type App struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Secret    string `json:"secret"`
	CreatedAt int64  `json:"created_at"` // unix ms
	// RetentionDays deletes the app's messages older than this many
	// days (see Core.RunRetention): 0 uses the server's default
	// (retention_days), -1 keeps them whatever the default.
	RetentionDays int `json:"retention_days"`

	// MaxUsers and MaxGroups cap the app's users and groups (0: no cap);
	// the host sets them (POST /api/v1/app/limits).
	MaxUsers  int `json:"max_users,omitempty"`
	MaxGroups int `json:"max_groups,omitempty"`
}

// User is a host site's user as pushed in by the host backend. UID is the
// host's own id, unique within the app.
type User struct {
	App       string          `json:"app"`
	UID       string          `json:"uid"`
	Nickname  string          `json:"nickname"`
	Avatar    string          `json:"avatar,omitempty"`
	Extra     json.RawMessage `json:"extra,omitempty"`
	CreatedAt int64           `json:"created_at"`
	UpdatedAt int64           `json:"updated_at"`
}

// Token is a chat token as stored: only the SHA-256 of the token string.
type Token struct {
	Hash      [32]byte `json:"-"`
	App       string   `json:"app"`
	UID       string   `json:"uid"`
	CreatedAt int64    `json:"created_at"`
	ExpiresAt int64    `json:"expires_at"`
}

// Session is a conversation's record. The Last* fields summarise the newest
// message; the store keeps them (see Summary).
type Session struct {
	ID        SessionID `json:"id"`
	App       string    `json:"app"`
	Kind      Kind      `json:"kind"`
	Name      string    `json:"name,omitempty"`
	Avatar    string    `json:"avatar,omitempty"`
	Owner     string    `json:"owner,omitempty"`
	Pair      [2]string `json:"pair,omitzero"` // private: the two uids, sorted
	CreatedAt int64     `json:"created_at"`

	LastSeq     uint64 `json:"last_seq"`
	LastAt      int64  `json:"last_at,omitempty"`
	LastFrom    string `json:"last_from,omitempty"`
	LastType    string `json:"last_type,omitempty"`
	LastPreview string `json:"last_preview,omitempty"`
}

// Member is one user's place in a session.
type Member struct {
	Session  SessionID `json:"session_id"`
	UID      string    `json:"uid"`
	Role     Role      `json:"role"`
	ReadSeq  uint64    `json:"read_seq"`
	JoinedAt int64     `json:"joined_at"`
}

// Message is one stored message. Seq is its place in the session (1, 2, 3…).
// From is empty for system notices. Content is the type's JSON object.
type Message struct {
	Session   SessionID       `json:"session_id"`
	Seq       uint64          `json:"seq"`
	App       string          `json:"-"` // implied by the session
	From      string          `json:"from"`
	Type      string          `json:"type"`
	Content   json.RawMessage `json:"content"`
	CID       string          `json:"cid,omitempty"`
	CreatedAt int64           `json:"created_at"`
	// EditedAt is when the message was last edited (unix ms; 0: never),
	// Edits how many times (msgops.go).
	EditedAt int64  `json:"edited_at,omitempty"`
	Edits    uint32 `json:"edit_count,omitempty"`
	// Mentions are the uids the sender mentioned; MentionAll, @all
	// (mentions.go).
	Mentions   []string `json:"mentions,omitempty"`
	MentionAll bool     `json:"mention_all,omitempty"`
}

// MemberKey names a membership to delete.
type MemberKey struct {
	Session SessionID
	UID     string
}

// UserKey names a user.
type UserKey struct {
	App string
	UID string
}

// ReadMark raises a member's read seq. A lower seq than the stored one is
// ignored: read marks never go backwards.
type ReadMark struct {
	Session SessionID
	UID     string
	Seq     uint64
}

// Summary updates a session's Last* fields. It is applied only when Seq is
// greater than the stored LastSeq.
type Summary struct {
	Session SessionID
	Seq     uint64
	At      int64
	From    string
	Type    string
	Preview string
}
