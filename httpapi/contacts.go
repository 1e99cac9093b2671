package httpapi

import (
	"github.com/valyala/fasthttp"

	"chatd/chat"
)

// The host's contacts endpoints: the app's settings (messaging policy) and
// the bulk import of friendships and blocks.

func (s *Server) appSettings(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	st, err := s.core.Settings(s.reqCtx, r.app)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, st)
	return nil
}

func (s *Server) appSetSettings(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	var in chat.SettingsInput
	if e := decodeJSON(ctx.PostBody(), &in, false); e != nil {
		return e
	}
	st, err := s.core.SetSettings(s.reqCtx, r.app, in)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, st)
	return nil
}

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
