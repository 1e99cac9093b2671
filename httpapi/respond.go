package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"chatd/chat"
)

// Every answer is a JSON envelope:
//
//	{"ok":true,"data":…}
//	{"ok":false,"error":{"code":"…","message":"…"}}
//
// except POST /v1/client, whose body is the core's reply JSON verbatim.

var (
	okPrefix   = []byte(`{"ok":true,"data":`)
	jsonType   = []byte("application/json")
	closeBrace = []byte("}")
)

// errorBody is the failure envelope.
type errorBody struct {
	OK    bool        `json:"ok"`
	Error *chat.Error `json:"error"`
}

// writeData answers status with {"ok":true,"data":v}.
func (s *Server) writeData(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.fail(ctx, fmt.Errorf("httpapi: encode reply: %w", err))
		return
	}
	ctx.Response.ResetBody()
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(jsonType)
	ctx.Response.AppendBody(okPrefix)
	ctx.Response.AppendBody(b)
	ctx.Response.AppendBody(closeBrace)
}

// writeRaw answers 200 with body as it is (already a JSON document).
func writeRaw(ctx *fasthttp.RequestCtx, body []byte) {
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.Response.Header.SetContentTypeBytes(jsonType)
	ctx.Response.SetBody(body)
}

// writeError answers e with the HTTP status of its code.
func writeError(ctx *fasthttp.RequestCtx, e *chat.Error) {
	writeErrorStatus(ctx, e.Code.HTTPStatus(), e)
}

// writeErrorStatus answers e with an explicit HTTP status (405, 431…).
func writeErrorStatus(ctx *fasthttp.RequestCtx, status int, e *chat.Error) {
	b, err := json.Marshal(errorBody{Error: e})
	if err != nil { // cannot happen: two strings
		b = []byte(`{"ok":false,"error":{"code":"internal","message":"internal error"}}`)
	}
	ctx.Response.ResetBody()
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(jsonType)
	ctx.Response.SetBody(b)
}

// fail answers err from the core or from this package. A *chat.Error is
// shown as it is; anything else is an internal failure: logged here with
// its detail and answered 500 "internal error" without it.
func (s *Server) fail(ctx *fasthttp.RequestCtx, err error) {
	var ce *chat.Error
	switch {
	case errors.As(err, &ce):
		writeError(ctx, ce)
		if st := ce.Code.HTTPStatus(); st >= 500 {
			s.log.Warn().Str("method", string(ctx.Method())).Bytes("path", ctx.Path()).
				Int("status", st).Str("code", string(ce.Code)).Str("msg", ce.Message).Msg("http api: server error")
		}
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		writeError(ctx, chat.Errf(chat.CodeUnavailable, "server is shutting down"))
		s.log.Warn().Str("method", string(ctx.Method())).Bytes("path", ctx.Path()).Err(err).
			Msg("http api: request cancelled")
	default:
		writeError(ctx, chat.Errf(chat.CodeInternal, "internal error"))
		s.log.Error().Str("method", string(ctx.Method())).Bytes("path", ctx.Path()).Err(err).
			Msg("http api: internal error")
	}
}

// denied answers an authentication or authorization failure and logs it at
// debug (a flood of bad requests must not flood the log).
func (s *Server) denied(ctx *fasthttp.RequestCtx, e *chat.Error) {
	writeError(ctx, e)
	if ev := s.log.Debug(); ev.Enabled() {
		ev.Str("method", string(ctx.Method())).Bytes("path", ctx.Path()).
			Str("peer", ctx.RemoteAddr().String()).Str("code", string(e.Code)).Str("msg", e.Message).
			Msg("http api: request denied")
	}
}

// serveError is fasthttp's ErrorHandler: failures while reading the request,
// before any handler runs. It answers in the same JSON envelope.
func (s *Server) serveError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		writeError(ctx, s.tooLarge())
	case errors.As(err, &small):
		writeErrorStatus(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge,
			chat.Errf(chat.CodeTooLarge, "request headers too large"))
	default:
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			writeErrorStatus(ctx, fasthttp.StatusRequestTimeout,
				chat.Errf(chat.CodeBadRequest, "timed out reading the request"))
			return
		}
		writeError(ctx, chat.Errf(chat.CodeBadRequest, "malformed HTTP request"))
	}
}

// tooLarge is the 413 answer.
func (s *Server) tooLarge() *chat.Error {
	return chat.Errf(chat.CodeTooLarge, "request body over the "+strconv.Itoa(s.cfg.MaxBody)+" byte limit")
}

// decodeJSON decodes body, one JSON object, into v strictly: unknown fields
// and trailing data are errors. An empty body is an error unless emptyOK (v
// is then left as it is). The returned error names the problem: the byte
// offset of a syntax error, the field of a type mismatch, the unknown field.
func decodeJSON(body []byte, v any, emptyOK bool) *chat.Error {
	if len(bytes.TrimSpace(body)) == 0 {
		if emptyOK {
			return nil
		}
		return chat.Errf(chat.CodeBadRequest, "request body is empty; expected a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		return chat.Errf(chat.CodeBadRequest,
			"invalid JSON: unexpected data after the object at offset "+strconv.Itoa(len(body)-len(bytes.TrimLeft(body[end:], " \t\r\n"))))
	}
	return nil
}

// jsonError turns an encoding/json error into a specific bad_request.
func jsonError(err error) *chat.Error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var ce *chat.Error
	switch {
	case errors.As(err, &ce): // a field's own decoder said what is wrong
		return ce
	case errors.As(err, &syn):
		return chat.Errf(chat.CodeBadRequest, "invalid JSON at offset "+strconv.FormatInt(syn.Offset, 10)+": "+syn.Error())
	case errors.As(err, &typ):
		if typ.Field == "" {
			return chat.Errf(chat.CodeBadRequest, "invalid JSON: expected a JSON object, got "+typ.Value)
		}
		at := ""
		if typ.Offset > 0 {
			at = " at offset " + strconv.FormatInt(typ.Offset, 10)
		}
		return chat.Errf(chat.CodeBadRequest, "invalid JSON"+at+
			": field \""+typ.Field+"\" must be "+jsonKind(typ.Type.Kind().String())+", got "+typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return chat.Errf(chat.CodeBadRequest, "invalid JSON: unexpected end of input")
	}
	return chat.Errf(chat.CodeBadRequest, "invalid JSON: "+strings.TrimPrefix(err.Error(), "json: "))
}

// jsonKind names a Go kind the way a JSON API user thinks of it.
func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "int", "int8", "int16", "int32", "int64":
		return "an integer"
	case "uint", "uint8", "uint16", "uint32", "uint64":
		return "a non-negative integer"
	case "float32", "float64":
		return "a number"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	return "a " + k
}

// missing is the 400 for a required field that is absent or empty.
func missing(field string) *chat.Error {
	return chat.Errf(chat.CodeBadRequest, "missing field \""+field+"\"")
}

// itoa formats n in base 10.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }
