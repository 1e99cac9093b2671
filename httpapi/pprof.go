package httpapi

import (
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"
)

// pprof serves Go's profiler (GET /debug/pprof/NAME: profile?seconds=N,
// heap, allocs, goroutine, mutex, block, trace…), loopback-only like
// /metrics. docs/performance.md ("Looking inside a run") shows its use.
func (s *Server) pprof(ctx *fasthttp.RequestCtx, _ *reqInfo) error {
	pprofhandler.PprofHandler(ctx)
	return nil
}
