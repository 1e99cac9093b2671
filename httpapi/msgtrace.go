package httpapi

import (
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"chatd/chat"
)

// maxTraceSeconds bounds one message trace.
const maxTraceSeconds = 300

// msgTrace serves GET /debug/msgtrace?seconds=N[&max=M], loopback-only
// like /metrics and pprof: for N seconds (default 10) the core notes when
// each WebSocket send was decoded, committed and answered (chat.StartTrace),
// then the records come back as text, one per line:
//
//	session seq decoded commit_start commit_end answered
//
// in unix nanoseconds, after a "#" comment line with the count. chatbench
// --trace joins them with its own send and receive times.
func (s *Server) msgTrace(ctx *fasthttp.RequestCtx, _ *reqInfo) error {
	args := ctx.QueryArgs()
	secs := 10.0
	if v := args.Peek("seconds"); v != nil {
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || !(f > 0 && f <= maxTraceSeconds) {
			return chat.Errf(chat.CodeBadRequest, "seconds must be a number of seconds in (0, "+strconv.Itoa(maxTraceSeconds)+"]")
		}
		secs = f
	}
	max := 0
	if v := args.Peek("max"); v != nil {
		n, err := strconv.Atoi(string(v))
		if err != nil || n <= 0 {
			return chat.Errf(chat.CodeBadRequest, "max must be a positive number of records")
		}
		max = n
	}
	tr, err := s.core.StartTrace(max)
	if err != nil {
		return err
	}
	timer := time.NewTimer(time.Duration(secs * float64(time.Second)))
	select {
	case <-timer.C:
	case <-ctx.Done(): // the server is shutting down
		timer.Stop()
	}
	recs, lost := tr.Stop()
	b := make([]byte, 0, 128+len(recs)*100)
	b = append(b, "# chatd message trace: session seq decoded commit_start commit_end answered (unix ns); "...)
	b = strconv.AppendInt(b, int64(len(recs)), 10)
	b = append(b, " records, "...)
	b = strconv.AppendInt(b, int64(lost), 10)
	b = append(b, " dropped past max\n"...)
	for i := range recs {
		r := &recs[i]
		b = strconv.AppendUint(b, uint64(r.Session), 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, r.Seq, 10)
		for _, v := range [...]int64{r.Decoded, r.CommitStart, r.CommitEnd, r.Answered} {
			b = append(b, ' ')
			b = strconv.AppendInt(b, v, 10)
		}
		b = append(b, '\n')
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.Response.Header.SetContentType("text/plain; charset=utf-8")
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	ctx.Response.SetBodyRaw(b)
	return nil
}
