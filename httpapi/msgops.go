package httpapi

import (
	"github.com/valyala/fasthttp"

	"chatd/chat"
)

// The host's message operations (chat/msgops.go): a recall over the server
// API is the host's, allowed at any time in any session of the app.

// recallInput is the body of POST /api/v1/messages/recall.
type recallInput struct {
	Session chat.SessionID `json:"session_id"`
	Seq     uint64         `json:"seq"`
	CID     string         `json:"cid,omitempty"`
}

func (s *Server) appRecall(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	var in recallInput
	if e := decodeJSON(ctx.PostBody(), &in, false); e != nil {
		return e
	}
	switch {
	case in.Session == 0:
		return missing("session_id")
	case in.Seq == 0:
		return missing("seq")
	}
	res, err := s.core.Recall(s.reqCtx, r.app, in.Session, in.Seq, in.CID)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, res)
	return nil
}
