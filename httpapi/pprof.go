package httpapi

import (
	"net/http/pprof"

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
	pprofhandler.PprofHandler(ctx)
	return nil
}
