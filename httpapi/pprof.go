package httpapi

import (
	"bytes"
	"net/http/pprof"
	"os"
	"strings"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
	"github.com/valyala/fasthttp/pprofhandler"
)

// pprofIndex is net/http/pprof's index page: fasthttp's pprofhandler
// answers 404 to any path that ends in a slash, the index's included.
var pprofIndex = fasthttpadaptor.NewFastHTTPHandlerFunc(pprof.Index)

// pprof serves Go's profiler (GET /debug/pprof/NAME: profile?seconds=N,
// heap, allocs, goroutine, mutex, block, trace…, and the index of them
// at /debug/pprof/), loopback-only like /metrics. It is how the
// performance figures in docs/performance.md were profiled.
func (s *Server) pprof(ctx *fasthttp.RequestCtx, _ *reqInfo) error {
	if string(ctx.Path()) == "/debug/pprof/" {
		pprofIndex(ctx)
		return nil
	}
	if bytes.Equal(ctx.Path(), pprofCmdline) {
		s.pprofCmdline(ctx)
		return nil
	}
	pprofhandler.PprofHandler(ctx)
	return nil
}

var pprofCmdline = []byte("/debug/pprof/cmdline")

// pprofCmdline replaces Go's /debug/pprof/cmdline, which prints os.Args
// as they are: a secret given as a flag (--admin-key) would be served to
// anyone who may read profiles. It shows Config.Cmdline instead (the
// arguments with secrets redacted), in the same format.
func (s *Server) pprofCmdline(ctx *fasthttp.RequestCtx) {
	args := s.cfg.Cmdline
	if args == nil && len(os.Args) > 0 {
		args = os.Args[:1]
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString(strings.Join(args, "\x00"))
}
