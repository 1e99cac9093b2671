package httpapi

import (
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"chatd/chat"
)

// The host's group administration (chat/groups_admin.go): every
// operation of /api/v1/groups/{id}/{op} acts as the host, which may do
// what a group's owner may.

// groupOpInput is the body of the POST operations; each uses its fields.
type groupOpInput struct {
	Add        []string `json:"add"`
	Remove     []string `json:"remove"`
	UID        string   `json:"uid"`
	Role       string   `json:"role"`
	Seconds    int64    `json:"seconds"`
	Enabled    *bool    `json:"enabled"`
	Text       string   `json:"text"`
	JoinPolicy string   `json:"join_policy"`
}

// groupPath splits "{id}/{op}".
func groupPath(param string) (chat.SessionID, string, error) {
	idStr, op, _ := strings.Cut(param, "/")
	id, err := strconv.ParseUint(idStr, 10, 64)
	if err != nil || id == 0 {
		return 0, "", chat.Errf(chat.CodeBadRequest, "bad group id \""+idStr+"\": want a positive integer")
	}
	return chat.SessionID(id), op, nil
}

var errGroupOps = chat.Errf(chat.CodeNotFound, "no such group operation; POST members, role, mute, mute_all, announcement, policy or dismiss; GET members")

func (s *Server) appGroupGet(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	sid, op, err := groupPath(r.param)
	if err != nil {
		return err
	}
	if op != "members" {
		return errGroupOps
	}
	args := ctx.QueryArgs()
	limit := 0
	if b := args.Peek("limit"); len(b) > 0 {
		if limit, err = strconv.Atoi(string(b)); err != nil || limit < 0 {
			return chat.Errf(chat.CodeBadRequest, "bad query parameter \"limit\": want a non-negative integer")
		}
	}
	page, err := s.core.ListGroupMembers(s.reqCtx, r.app, sid, string(args.Peek("after")), limit)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, page)
	return nil
}

func (s *Server) appGroupPost(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	sid, op, err := groupPath(r.param)
	if err != nil {
		return err
	}
	var in groupOpInput
	if e := decodeJSON(ctx.PostBody(), &in, op == "dismiss"); e != nil {
		return e
	}
	c, app := s.core, r.app
	var out any
	switch op {
	case "members":
		if len(in.Add) == 0 && len(in.Remove) == 0 {
			return chat.Errf(chat.CodeBadRequest, "missing field \"add\" or \"remove\"")
		}
		res := struct {
			Added   []string `json:"added"`
			Removed []string `json:"removed"`
		}{Added: []string{}, Removed: []string{}}
		if len(in.Add) > 0 {
			if res.Added, err = c.HostAddMembers(s.reqCtx, app, sid, in.Add); err != nil {
				return err
			}
		}
		if len(in.Remove) > 0 {
			if res.Removed, err = c.HostRemoveMembers(s.reqCtx, app, sid, in.Remove); err != nil {
				return err
			}
		}
		out = res
	case "role":
		if in.UID == "" {
			return missing("uid")
		}
		err = c.GroupSetRole(s.reqCtx, app, "", sid, in.UID, in.Role)
	case "mute":
		if in.UID == "" {
			return missing("uid")
		}
		var until int64
		until, err = c.GroupMute(s.reqCtx, app, "", sid, in.UID, time.Duration(in.Seconds)*time.Second)
		out = map[string]int64{"until": until}
	case "mute_all":
		if in.Enabled == nil {
			return missing("enabled")
		}
		err = c.GroupMuteAll(s.reqCtx, app, "", sid, *in.Enabled)
	case "announcement":
		out, err = c.GroupAnnounce(s.reqCtx, app, "", sid, in.Text)
	case "policy":
		err = c.GroupSetPolicy(s.reqCtx, app, "", sid, in.JoinPolicy)
	case "dismiss":
		err = c.GroupDismiss(s.reqCtx, app, "", sid)
	default:
		return errGroupOps
	}
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, out)
	return nil
}
