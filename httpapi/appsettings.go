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
	// Messaging is who may write to whom: anyone, friends or host
	// (chat.AppSettings, contacts.go).
	Messaging string `json:"messaging"`
	// Devices is how many connections a user may hold: multi, single or
	// one_per_platform (chat devices.go).
	Devices string `json:"devices"`
}

// AppSettingsRequest is the body of POST /api/v1/app. RetentionDays:
// -1 keeps messages forever, 0 uses the server's retention_days, N > 0
// deletes messages older than N days (at the next retention pass).
type AppSettingsRequest struct {
	RetentionDays *int    `json:"retention_days"`
	Messaging     *string `json:"messaging"` // anyone, friends or host
	Devices       *string `json:"devices"`   // multi, single or one_per_platform
}

func appSettings(a chat.App, st chat.AppSettings) AppSettings {
	return AppSettings{ID: a.ID, Name: a.Name, CreatedAt: a.CreatedAt, RetentionDays: a.RetentionDays, Messaging: st.Messaging, Devices: st.Devices}
}

func (s *Server) appGetSettings(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	a, err := s.core.App(s.reqCtx, r.app)
	if err != nil {
		return err
	}
	st, err := s.core.Settings(s.reqCtx, r.app)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, appSettings(a, st))
	return nil
}

func (s *Server) appSetSettings(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	var in AppSettingsRequest
	if e := decodeJSON(ctx.PostBody(), &in, false); e != nil {
		return e
	}
	if in.RetentionDays == nil && in.Messaging == nil && in.Devices == nil {
		return chat.Errf(chat.CodeBadRequest, "nothing to change: give retention_days, messaging or devices")
	}
	if in.Devices != nil && !chat.ValidDevices(*in.Devices) {
		return chat.Errf(chat.CodeBadRequest, "unknown device policy \""+*in.Devices+"\"; policies are multi, single, one_per_platform")
	}
	if in.Messaging != nil && !chat.ValidPolicy(*in.Messaging) {
		// Checked first: a bad field changes nothing.
		return chat.Errf(chat.CodeBadRequest, "unknown messaging policy \""+*in.Messaging+"\"; policies are anyone, friends, host")
	}
	a, err := s.core.App(s.reqCtx, r.app)
	if in.RetentionDays != nil {
		a, err = s.core.SetRetention(s.reqCtx, r.app, *in.RetentionDays)
	}
	if err != nil {
		return err
	}
	if in.Messaging != nil || in.Devices != nil {
		si := chat.SettingsInput{}
		if in.Messaging != nil {
			si.Messaging = *in.Messaging
		}
		if in.Devices != nil {
			si.Devices = *in.Devices
		}
		if _, err := s.core.SetSettings(s.reqCtx, r.app, si); err != nil {
			return err
		}
	}
	st, err := s.core.Settings(s.reqCtx, r.app)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, appSettings(a, st))
	return nil
}
