package httpapi

import (
	"bytes"
	"strconv"

	"github.com/valyala/fasthttp"

	"chatd/chat"
)

// The server API of timed consultations (docs/consultations.md). All are
// signed with the app's secret, like the rest of /api/v1.
//
//	POST /api/v1/consultations                  create
//	GET  /api/v1/consultations/{id}             the state and clock
//	POST /api/v1/consultations/{id}             an action: extend, pause, resume, end, cancel
//	GET  /api/v1/consultations/{id}/record      the billing record (once final)
//	GET  /api/v1/consult-records                billing records of a consultant or a customer
//	GET  /api/v1/consultants/{uid}              a consultant's settings
//	POST /api/v1/consultants/{uid}              set them

var (
	prefixConsultations = []byte("/api/v1/consultations/")
	prefixConsultants   = []byte("/api/v1/consultants/")
)

// resolveConsult routes the consultation paths; ok is false for any other.
func resolveConsult(p []byte) (id int, param []byte, ok bool) {
	switch string(p) {
	case "/api/v1/consultations":
		return epConsultations, nil, true
	case "/api/v1/consult-records":
		return epConsultRecords, nil, true
	}
	if rest, found := bytes.CutPrefix(p, prefixConsultations); found {
		sid, tail, more := bytes.Cut(rest, slash)
		switch {
		case len(sid) == 0:
			return epNone, nil, true
		case !more:
			return epConsultation, sid, true
		case string(tail) == "record":
			return epConsultRecord, sid, true
		}
		return epNone, nil, true
	}
	if rest, found := bytes.CutPrefix(p, prefixConsultants); found {
		if len(rest) == 0 || bytes.IndexByte(rest, '/') >= 0 {
			return epNone, nil, true
		}
		return epConsultant, rest, true
	}
	return 0, nil, false
}

func consultID(param string) (chat.SessionID, error) {
	id, err := strconv.ParseUint(param, 10, 64)
	if err != nil || id == 0 {
		return 0, chat.Errf(chat.CodeBadRequest, "bad consultation id \""+param+"\": want a positive integer")
	}
	return chat.SessionID(id), nil
}

func (s *Server) appCreateConsultation(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	var in chat.ConsultInput
	if e := decodeJSON(ctx.PostBody(), &in, false); e != nil {
		return e
	}
	v, err := s.core.CreateConsultation(s.reqCtx, r.app, in)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, v)
	return nil
}

func (s *Server) appConsultation(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	id, err := consultID(r.param)
	if err != nil {
		return err
	}
	v, err := s.core.Consultation(s.reqCtx, r.app, id)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, v)
	return nil
}

// ConsultActionInput is the body of POST /api/v1/consultations/{id}.
type ConsultActionInput struct {
	Action  string `json:"action"`            // extend, pause, resume, end, cancel
	Seconds int64  `json:"seconds,omitempty"` // extend: seconds bought
	Ref     string `json:"ref,omitempty"`     // extend: the host's order id, kept in the record
}

func (s *Server) appConsultAct(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	id, err := consultID(r.param)
	if err != nil {
		return err
	}
	var in ConsultActionInput
	if e := decodeJSON(ctx.PostBody(), &in, false); e != nil {
		return e
	}
	if in.Action == "" {
		return missing("action")
	}
	op, ok := chat.ParseConsultOp(in.Action)
	if !ok {
		return chat.Errf(chat.CodeBadRequest, "unknown action \""+in.Action+"\"; the host's actions are extend, pause, resume, end, cancel")
	}
	if len(in.Ref) > 128 {
		return chat.Errf(chat.CodeBadRequest, "ref longer than 128 bytes")
	}
	if op != chat.ConsultExtend && (in.Seconds != 0 || in.Ref != "") {
		return chat.Errf(chat.CodeBadRequest, "seconds and ref go with extend only")
	}
	v, err := s.core.ConsultAct(s.reqCtx, r.app, id, "", chat.ConsultChange{Op: op, Seconds: in.Seconds, Ref: in.Ref})
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, v)
	return nil
}

func (s *Server) appConsultRecord(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	id, err := consultID(r.param)
	if err != nil {
		return err
	}
	rec, err := s.core.ConsultRecord(s.reqCtx, r.app, id)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, rec)
	return nil
}

func (s *Server) appConsultRecords(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	var q chat.ConsultRecordQuery
	var bad *chat.Error
	ctx.QueryArgs().VisitAll(func(k, v []byte) {
		if bad != nil {
			return
		}
		num := func() int64 {
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil || n < 0 {
				bad = chat.Errf(chat.CodeBadRequest, "bad query parameter \""+string(k)+"\": want a non-negative integer")
			}
			return n
		}
		switch string(k) {
		case "consultant":
			q.Consultant = string(v)
		case "customer":
			q.Customer = string(v)
		case "from":
			q.From = num()
		case "to":
			q.To = num()
		case "after":
			q.After = string(v)
		case "limit":
			q.Limit = int(min(num(), chat.MaxPage))
		default:
			bad = chat.Errf(chat.CodeBadRequest, "unknown query parameter \""+string(k)+
				"\"; use consultant or customer, from, to (unix ms), after, limit")
		}
	})
	if bad != nil {
		return bad
	}
	page, err := s.core.ConsultRecords(s.reqCtx, r.app, q)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, page)
	return nil
}

func (s *Server) appConsultant(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	v, err := s.core.ConsultantSettings(s.reqCtx, r.app, r.param)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, v)
	return nil
}

func (s *Server) appSetConsultant(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	var in chat.ConsultantSettings
	if e := decodeJSON(ctx.PostBody(), &in, false); e != nil {
		return e
	}
	v, err := s.core.SetConsultantSettings(s.reqCtx, r.app, r.param, in)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, v)
	return nil
}
