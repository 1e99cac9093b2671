package apiclient

import (
	"context"
	"net/http"
)

// ModerationInput is the body of POST /api/v1/moderation: Action is ban,
// unban, mute, unmute or kick. Until (unix ms) or DurationMS ends a ban or
// mute; neither means for ever.
type ModerationInput struct {
	Action     string `json:"action"`
	UID        string `json:"uid"`
	Until      int64  `json:"until,omitempty"`
	DurationMS int64  `json:"duration_ms,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// ModerationResult is the answer of POST /api/v1/moderation.
type ModerationResult struct {
	Action string `json:"action"`
	UID    string `json:"uid"`
	Until  int64  `json:"until,omitempty"` // 0: for ever (ban, mute)
	Reason string `json:"reason,omitempty"`
	Kicked int    `json:"kicked"` // connections closed (ban, kick)
}

// Restriction is one user's ban or mute in a ModerationList.
type Restriction struct {
	UID       string `json:"uid"`
	Until     int64  `json:"until"` // unix ms; 0: for ever
	Reason    string `json:"reason,omitempty"`
	CreatedAt int64  `json:"created_at"`
}

// ModerationList is GET /api/v1/moderation: the app's bans and mutes in
// force, by uid.
type ModerationList struct {
	Banned []Restriction `json:"banned"`
	Muted  []Restriction `json:"muted"`
}

// Moderate runs one moderation action.
func (c *Client) Moderate(ctx context.Context, in ModerationInput) (ModerationResult, error) {
	var r ModerationResult
	err := c.Do(ctx, http.MethodPost, "/api/v1/moderation", in, &r)
	return r, err
}

// Moderation lists the app's bans and mutes in force.
func (c *Client) Moderation(ctx context.Context) (ModerationList, error) {
	var l ModerationList
	err := c.Do(ctx, http.MethodGet, "/api/v1/moderation", nil, &l)
	return l, err
}

// AppLimits is GET and POST /api/v1/app/limits: the app's caps (0: none)
// and its counts.
type AppLimits struct {
	MaxUsers  int `json:"max_users"`
	MaxGroups int `json:"max_groups"`
	Users     int `json:"users"`
	Groups    int `json:"groups"`
}

// AppLimitsInput changes the caps: a nil field keeps its cap, 0 removes it.
type AppLimitsInput struct {
	MaxUsers  *int `json:"max_users,omitempty"`
	MaxGroups *int `json:"max_groups,omitempty"`
}

// AppLimits reads the app's caps and counts.
func (c *Client) AppLimits(ctx context.Context) (AppLimits, error) {
	var l AppLimits
	err := c.Do(ctx, http.MethodGet, "/api/v1/app/limits", nil, &l)
	return l, err
}

// SetAppLimits changes the app's caps.
func (c *Client) SetAppLimits(ctx context.Context, in AppLimitsInput) (AppLimits, error) {
	var l AppLimits
	err := c.Do(ctx, http.MethodPost, "/api/v1/app/limits", in, &l)
	return l, err
}
