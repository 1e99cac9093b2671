package httpapi

import (
	"github.com/valyala/fasthttp"

	"chatd/chat"
)

// The host's bulk import of friendships and blocks. The messaging policy
// is one of the app's settings (appsettings.go).

func (s *Server) appImportContacts(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	var in chat.ContactImport
	if e := decodeJSON(ctx.PostBody(), &in, false); e != nil {
		return e
	}
	res, err := s.core.ImportContacts(s.reqCtx, r.app, in)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, res)
	return nil
}
