package httpapi

import (
	"encoding/json"

	"github.com/valyala/fasthttp"

	"chatd/chat"
)

// broadcastInput is the body of POST /api/v1/broadcasts.
type broadcastInput struct {
	UIDs    []string        `json:"uids"`
	Type    string          `json:"type"`
	Content json.RawMessage `json:"content"`
}

// appBroadcast sends a notice to every user of the app, or to uids
// (chat/broadcast.go): stored once, pushed to the online recipients.
func (s *Server) appBroadcast(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	var in broadcastInput
	if e := decodeJSON(ctx.PostBody(), &in, false); e != nil {
		return e
	}
	if len(in.Content) == 0 || string(in.Content) == "null" {
		return missing("content")
	}
	res, err := s.core.Broadcast(s.reqCtx, r.app, chat.BroadcastInput{UIDs: in.UIDs, Type: in.Type, Content: in.Content})
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, res)
	return nil
}
