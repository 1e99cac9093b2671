package httpapi

import (
	"bytes"
	"os"
	"strings"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"
)

// pprof serves Go's profiler (GET /debug/pprof/NAME: profile?seconds=N,
// heap, allocs, goroutine, mutex, block, trace…), loopback-only like
// /metrics. docs/performance.md ("Looking inside a run") shows its use.
func (s *Server) pprof(ctx *fasthttp.RequestCtx, _ *reqInfo) error {
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
