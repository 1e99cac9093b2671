package httpapi

import (
	"bytes"

	"github.com/valyala/fasthttp"

	"chatd/chat"
	"chatd/internal/demo"
)

// The demo pages (docs/demo.md): GET /demo/… serves the files embedded in
// internal/demo, POST /demo/api/{name} runs a call of its backend for
// callers on this machine. With Config.Demo off both answer 404 as unknown
// paths do.

var (
	prefixDemo    = []byte("/demo/")
	prefixDemoAPI = []byte("/demo/api/")
	pathDemo      = []byte("/demo")
)

// resolveDemo maps the /demo paths: (endpoint, parameter, ok).
func resolveDemo(p []byte) (int, []byte, bool) {
	if rest, ok := bytes.CutPrefix(p, prefixDemoAPI); ok {
		return epDemoAPI, rest, true
	}
	if rest, ok := bytes.CutPrefix(p, prefixDemo); ok {
		return epDemo, rest, true
	}
	if bytes.Equal(p, pathDemo) {
		return epDemo, nil, true
	}
	return epNone, nil, false
}

// demoCSP lets the pages load only their own files, connect to chatd
// (HTTP here, WebSocket on its own port) and show uploaded images
// (served here) and local previews (blob:).
const demoCSP = "default-src 'self'; img-src 'self' blob: data:; connect-src 'self' ws: wss:; " +
	"object-src 'none'; base-uri 'none'; frame-ancestors 'self'"

// demoFile serves one embedded file. The files change only with the
// binary: answers carry a strong ETag and are revalidated on every use
// (no-cache), so an upgraded chatd never serves a stale page.
func (s *Server) demoFile(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	if bytes.Equal(ctx.Path(), pathDemo) {
		ctx.Redirect("/demo/", fasthttp.StatusPermanentRedirect)
		return nil
	}
	a, ok := demo.Lookup(r.param)
	if !ok {
		return errNoDemoFile(r.param)
	}
	h := &ctx.Response.Header
	h.Set(fasthttp.HeaderCacheControl, "no-cache")
	h.Set(fasthttp.HeaderETag, a.ETag)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", demoCSP)
	if inm := ctx.Request.Header.Peek(fasthttp.HeaderIfNoneMatch); len(inm) > 0 && etagMatch(inm, a.ETag) {
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return nil
	}
	h.SetContentType(a.ContentType)
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.Response.SetBodyRaw(a.Body) // embedded: never modified
	return nil
}

// etagMatch reports whether an If-None-Match list names tag (or is "*").
func etagMatch(list []byte, tag string) bool {
	for _, t := range bytes.Split(list, []byte{','}) {
		t = bytes.TrimPrefix(bytes.TrimSpace(t), []byte("W/"))
		if string(t) == tag || string(t) == "*" {
			return true
		}
	}
	return false
}

// demoAPI runs a call of the demo backend (authDemo has checked that the
// caller is local).
func (s *Server) demoAPI(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	out, err := s.demo.Call(s.reqCtx, r.param, &demo.Request{Body: ctx.PostBody(), Host: string(ctx.Host())})
	if err != nil {
		return err
	}
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	s.writeData(ctx, fasthttp.StatusOK, out)
	return nil
}

func errNoDemoFile(name string) error {
	if len(name) > 64 {
		name = name[:64] + "…"
	}
	return chat.Errf(chat.CodeNotFound, "no demo file \""+name+"\"")
}
