package httpapi

import (
	"github.com/valyala/fasthttp"

	"chatd/chat"
)

// AppSettings is the answer of GET and POST /api/v1/app: the signing
// app's record without its secret.
type AppSettings struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	CreatedAt     int64  `json:"created_at"`
	RetentionDays int    `json:"retention_days"`
}

// AppSettingsRequest is the body of POST /api/v1/app. RetentionDays:
// -1 keeps messages forever, 0 uses the server's retention_days, N > 0
// deletes messages older than N days (at the next retention pass).
type AppSettingsRequest struct {
	RetentionDays *int `json:"retention_days"`
}

func appSettings(a chat.App) AppSettings {
	return AppSettings{ID: a.ID, Name: a.Name, CreatedAt: a.CreatedAt, RetentionDays: a.RetentionDays}
}

func (s *Server) appGetSettings(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	a, err := s.core.App(s.reqCtx, r.app)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, appSettings(a))
	return nil
}

func (s *Server) appSetSettings(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	var in AppSettingsRequest
	if e := decodeJSON(ctx.PostBody(), &in, false); e != nil {
		return e
	}
	if in.RetentionDays == nil {
		return missing("retention_days")
	}
	a, err := s.core.SetRetention(s.reqCtx, r.app, *in.RetentionDays)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, appSettings(a))
	return nil
}
