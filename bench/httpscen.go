package bench

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"chatd/httpapi/apiclient"
)

// HTTP sends Rate messages/s through the server API's send endpoint
// (POST /api/v1/messages, signed with the app secret), open-loop, with up
// to Concurrency requests in flight; the schedule queues the rest on the
// client, and their latency counts from their intended time. Pairs pairs
// of users stay online over WebSocket as the senders' identities and the
// recipients, so delivery is measured too.
type HTTP struct {
	Rate        float64 `json:"rate"`        // requests/s; zero means 1,000
	Concurrency int     `json:"concurrency"` // requests in flight at most; zero means 64
	Pairs       int     `json:"pairs"`       // online pairs; zero means 50
}

// Name implements Scenario.
func (*HTTP) Name() string { return "http" }

func (s *HTTP) check(o *Options) error {
	if o.Trace != "" {
		return errors.New("http: --trace follows WebSocket sends (p2p, group, churn); chatd does not trace sends made over HTTP")
	}
	if s.Rate == 0 {
		s.Rate = 1000
	}
	if s.Concurrency == 0 {
		s.Concurrency = 64
	}
	if s.Pairs == 0 {
		s.Pairs = 50
	}
	if s.Rate < 0 || s.Concurrency < 1 || s.Pairs < 1 {
		return errors.New("http: --rate must be positive, --concurrency and --pairs at least 1")
	}
	return nil
}

func (s *HTTP) users() int   { return 2 * s.Pairs }
func (s *HTTP) sockets() int { return 2*s.Pairs + s.Concurrency }

// httpJob is one scheduled request.
type httpJob struct {
	k  int64
	at int64
}

func (s *HTTP) run(e *env) error {
	conns := e.ramp(seq(0, 2*s.Pairs))
	defer e.closeAll(conns)
	if e.stopped() {
		return nil
	}
	sess := e.openPairs(conns)
	type sender struct {
		uid     string
		session uint64
	}
	var senders []sender
	for i, ps := range sess {
		if ps.ID != 0 {
			senders = append(senders, sender{UserID(2 * i), ps.ID}, sender{UserID(2*i + 1), ps.ID})
		}
	}
	if len(senders) == 0 {
		return errors.New("http: no pair has both users connected")
	}

	api := newAPIClient(e.api.BaseURL, "", &dialer{ep: e.tgt.http, srcs: e.open.ds[0].srcs, timeout: e.o.ConnectTimeout}, s.Concurrency)
	api.App, api.Secret = e.api.App, e.api.Secret
	defer api.HTTP.Transport.(*http.Transport).CloseIdleConnections()

	tr := e.tr
	jobs := make(chan httpJob, 1<<16)
	var wg sync.WaitGroup
	// Requests are not canceled by Ctrl-C: in flight ones finish (or time
	// out) so that they are counted, not reported as errors.
	reqCtx := context.WithoutCancel(e.ctx)
	text := e.open.cfg.text
	for range s.Concurrency {
		wg.Go(func() {
			var res apiclient.SendResult
			body := make([]byte, 0, 256)
			for j := range jobs {
				if e.ctx.Err() != nil { // interrupted: count the queue, do not send it
					tr.skipped.Add(1)
					continue
				}
				res = apiclient.SendResult{}
				sd := senders[j.k%int64(len(senders))]
				body = body[:0]
				body = append(body, `{"from":"`...)
				body = append(body, sd.uid...)
				body = append(body, `","session_id":`...)
				body = strconv.AppendUint(body, sd.session, 10)
				body = append(body, `,"type":"text","content":{"t":`...)
				body = strconv.AppendInt(body, j.at, 10)
				body = append(body, `,"r":"`...)
				body = append(body, e.runTag...)
				body = append(body, `","text":"`...)
				body = append(body, text...)
				body = append(body, `"},"cid":"`...)
				body = append(body, e.runTag...)
				body = append(body, ".h."...)
				body = strconv.AppendInt(body, j.k, 36)
				body = append(body, `"}`...)
				tr.lag.Record(int(j.k), time.Duration(e.clk.now()-j.at))
				tr.sent.Add(1)
				ctx, cancel := context.WithTimeout(reqCtx, 30*time.Second)
				err := api.Do(ctx, http.MethodPost, "/api/v1/messages", body, &res)
				cancel()
				now := e.clk.now()
				var ae *apiclient.APIError
				switch {
				case err == nil && res.Duplicate:
					tr.dups.Add(1)
				case err == nil:
					tr.acked.Add(1)
					tr.ack.Record(int(j.k), time.Duration(now-j.at))
					storeMax(&tr.lastAck, now)
				case errors.As(err, &ae) && ae.Code != "":
					tr.errs.add(ae.Code, 1)
				case errors.As(err, &ae):
					tr.errs.add("HTTP "+strconv.Itoa(ae.Status), 1)
				default:
					tr.errs.add("transport: "+classifyNetErr(err), 1)
				}
			}
		})
	}
	e.liveTraffic("run")
	e.markServer()
	start := e.clk.now() + int64(10*time.Millisecond)
	tr.firstSend.Store(start)
	p := newPacer(start, s.Rate, e.o.Duration, 0, 1)
	p.run(e.ctx, e.clk, func(k, at int64) {
		tr.scheduled.Add(1)
		select {
		case jobs <- httpJob{k: k, at: at}:
		case <-e.ctx.Done():
			tr.skipped.Add(1)
		}
	})
	sendFor := time.Duration(e.clk.now() - start)
	close(jobs)
	wg.Wait()
	e.drainTrafficEchoes(tr.acked.Load, tr.acked.Load) // each message also reaches its sender's connection

	h := &HTTPReport{Concurrency: s.Concurrency, Requests: tr.sent.Load(), OK: tr.acked.Load(),
		Errors: tr.errs.snapshot(), Latency: tr.ack.Summary()}
	m := e.finishMessages(s.Rate, sendFor, tr.acked.Load(), false)
	h.RatePerS = m.AckedPerS
	e.rep.HTTP = h
	e.rep.Messages = m
	e.sampleStatus(false)
	return nil
}
