package httpapi

import (
	"strconv"

	"github.com/valyala/fasthttp"

	"chatd/chat"
)

// The host's views of its users: the user list, a user's session list and
// unread counts, and deleting a user.

// queryInt reads a non-negative integer query parameter (0 when absent).
func queryInt(ctx *fasthttp.RequestCtx, name string) (int, error) {
	b := ctx.QueryArgs().Peek(name)
	if len(b) == 0 {
		return 0, nil
	}
	n, err := strconv.Atoi(string(b))
	if err != nil || n < 0 {
		return 0, chat.Errf(chat.CodeBadRequest, "bad query parameter \""+name+"\": want a non-negative integer")
	}
	return n, nil
}

func (s *Server) appListUsers(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	limit, err := queryInt(ctx, "limit")
	if err != nil {
		return err
	}
	p, err := s.core.ListUsers(s.reqCtx, r.app, string(ctx.QueryArgs().Peek("cursor")), limit)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, p)
	return nil
}

func (s *Server) appUserSessions(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	limit, err := queryInt(ctx, "limit")
	if err != nil {
		return err
	}
	args := ctx.QueryArgs()
	p, err := s.core.UserSessions(s.reqCtx, r.app, r.param, chat.SessionListInput{
		Cursor: string(args.Peek("cursor")), Limit: limit, Keyword: string(args.Peek("keyword"))})
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, p)
	return nil
}

func (s *Server) appUserUnread(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	u, err := s.core.Unread(s.reqCtx, r.app, r.param)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, u)
	return nil
}

// DeleteUserRequest is the optional body of POST /api/v1/users/{uid}/delete.
type DeleteUserRequest struct {
	// Messages is "keep" (the default) or "erase".
	Messages string `json:"messages"`
}

func (s *Server) appDeleteUser(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	var in DeleteUserRequest
	if e := decodeJSON(ctx.PostBody(), &in, true); e != nil {
		return e
	}
	if in.Messages != "" && in.Messages != "keep" && in.Messages != "erase" {
		return chat.Errf(chat.CodeBadRequest, "messages must be \"keep\" or \"erase\"")
	}
	d, err := s.core.DeleteUser(s.reqCtx, r.app, r.param, in.Messages == "erase")
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, d)
	return nil
}
