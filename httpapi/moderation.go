package httpapi

import (
	"github.com/valyala/fasthttp"

	"chatd/chat"
)

// ModerationRequest is the body of POST /api/v1/moderation: one action on
// one user of the signing app.
//
//   - ban: close the user's connections (close code 4004) and refuse every
//     login until Until (unix ms) or for DurationMS; neither means for ever.
//   - mute: refuse the user's own sends, same end fields.
//   - unban, unmute: lift it (not_found when there is none in force).
//   - kick: close the user's connections (close code 4002); they may log
//     in again.
type ModerationRequest struct {
	Action     string `json:"action"`
	UID        string `json:"uid"`
	Until      int64  `json:"until,omitempty"`
	DurationMS int64  `json:"duration_ms,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// ModerationReply is the answer of POST /api/v1/moderation. Until and
// Reason echo a ban or mute as stored (Until 0: for ever); Kicked counts
// the connections a ban or kick closed.
type ModerationReply struct {
	Action string `json:"action"`
	UID    string `json:"uid"`
	Until  int64  `json:"until,omitempty"`
	Reason string `json:"reason,omitempty"`
	Kicked int    `json:"kicked"`
}

// appModeration answers GET /api/v1/moderation: the app's users banned or
// muted now, with their ends.
func (s *Server) appModeration(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	s.writeData(ctx, fasthttp.StatusOK, s.core.Moderation(s.reqCtx, r.app))
	return nil
}

// appModerate runs POST /api/v1/moderation.
func (s *Server) appModerate(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	var in ModerationRequest
	if e := decodeJSON(ctx.PostBody(), &in, false); e != nil {
		return e
	}
	if in.UID == "" {
		return missing("uid")
	}
	out := ModerationReply{Action: in.Action, UID: in.UID}
	timed := in.Until != 0 || in.DurationMS != 0 || in.Reason != ""
	switch in.Action {
	case "ban", "mute":
		kind := chat.RestrictBan
		if in.Action == "mute" {
			kind = chat.RestrictMute
		}
		res, n, err := s.core.Restrict(s.reqCtx, r.app, kind,
			chat.ModerationInput{UID: in.UID, Until: in.Until, Duration: in.DurationMS, Reason: in.Reason})
		if err != nil {
			return err
		}
		out.Until, out.Reason, out.Kicked = res.Until, res.Reason, n
	case "unban", "unmute", "kick":
		if timed {
			return chat.Errf(chat.CodeBadRequest, "until, duration_ms and reason go with ban and mute only")
		}
		var err error
		switch in.Action {
		case "unban":
			err = s.core.Unrestrict(s.reqCtx, r.app, in.UID, chat.RestrictBan)
		case "unmute":
			err = s.core.Unrestrict(s.reqCtx, r.app, in.UID, chat.RestrictMute)
		default:
			out.Kicked, err = s.core.Kick(s.reqCtx, r.app, in.UID)
		}
		if err != nil {
			return err
		}
	case "":
		return missing("action")
	default:
		return chat.Errf(chat.CodeBadRequest, "unknown action \""+clip(in.Action, 40)+"\"; actions are ban, unban, mute, unmute, kick")
	}
	s.writeData(ctx, fasthttp.StatusOK, out)
	return nil
}

// clip shortens s to at most n bytes, for echoing input in a message.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// appLimits answers GET /api/v1/app/limits: the app's caps (0: none) and
// its counts of users and groups.
func (s *Server) appLimits(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	v, err := s.core.AppLimits(s.reqCtx, r.app)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, v)
	return nil
}

// appSetLimits runs POST /api/v1/app/limits with a chat.AppLimitsInput:
// a field left out keeps its cap, 0 removes it.
func (s *Server) appSetLimits(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	var in chat.AppLimitsInput
	if e := decodeJSON(ctx.PostBody(), &in, false); e != nil {
		return e
	}
	if in.MaxUsers == nil && in.MaxGroups == nil {
		return chat.Errf(chat.CodeBadRequest, "give max_users, max_groups or both (0 removes a cap)")
	}
	v, err := s.core.SetAppLimits(s.reqCtx, r.app, in)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, v)
	return nil
}
