package bench

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxSendWorkers caps the goroutines that run a send schedule: a few, so
// one socket write blocking does not hold up every other sender, not so
// many that they fight over 2 cores.
const maxSendWorkers = 4

// pickFunc maps schedule event k to the connection that sends it and the
// session it goes to; a nil connection means the sender is offline (the
// event is counted as skipped).
type pickFunc func(k int64) (*wsConn, uint64)

// drive runs an open-loop schedule of rate messages/s for the run's
// Duration over WebSocket, spread over up to maxSendWorkers goroutines
// that each own every n-th event (and so, when senders are picked k mod
// len(senders), every n-th sender). It returns when the schedule is done
// or the run is stopped, and how long sending took.
func (e *env) drive(rate float64, senders int, pick pickFunc) time.Duration {
	workers := max(1, min(maxSendWorkers, senders))
	e.markServer()
	if e.tr.trace != nil {
		e.tr.trace.startServer(e)
	}
	start := e.clk.now() + int64(10*time.Millisecond) // let every worker reach its first wait
	e.tr.firstSend.Store(start)
	var wg sync.WaitGroup
	for w := range workers {
		p := newPacer(start, rate, e.o.Duration, w, workers)
		wg.Go(func() {
			p.run(e.ctx, e.clk, func(k, at int64) {
				e.tr.scheduled.Add(1)
				c, session := pick(k)
				if c == nil || c.send(at, session) != nil {
					e.tr.skipped.Add(1)
				}
			})
		})
	}
	wg.Wait()
	return time.Duration(max(e.clk.now()-start, 0))
}

// liveTraffic shows the traffic figures on the live line under phase.
func (e *env) liveTraffic(phase string) {
	tr := e.tr
	var lastSent, lastDel int64
	var lastAt time.Time
	e.prog.set(phase, func(b []byte) []byte {
		now := time.Now()
		sent, del := tr.sent.Load(), tr.delivered.Load()
		dt := now.Sub(lastAt).Seconds()
		b = append(b, "conns "...)
		b = appendInt(b, tr.online.Load())
		b = append(b, ", sent "...)
		b = appendInt(b, sent)
		if !lastAt.IsZero() && dt > 0 {
			b = append(b, " ("...)
			b = appendInt(b, int64(float64(sent-lastSent)/dt))
			b = append(b, "/s)"...)
		}
		b = append(b, ", acked "...)
		b = appendInt(b, tr.acked.Load())
		b = append(b, ", delivered "...)
		b = appendInt(b, del)
		if !lastAt.IsZero() && dt > 0 {
			b = append(b, " ("...)
			b = appendInt(b, int64(float64(del-lastDel)/dt))
			b = append(b, "/s)"...)
		}
		if del > 0 {
			b = append(b, ", delivery p99 "...)
			b = append(b, formatMicros(tr.delivery.Snapshot().ValueAtQuantile(99))...)
		} else if tr.acked.Load() > 0 {
			b = append(b, ", ack p99 "...)
			b = append(b, formatMicros(tr.ack.Snapshot().ValueAtQuantile(99))...)
		}
		if n := tr.errs.total(); n > 0 {
			b = append(b, ", errors "...)
			b = appendInt(b, n)
		}
		lastSent, lastDel, lastAt = sent, del, now
		return b
	})
}

// drainTraffic waits, up to the run's Drain, until every sent message has
// a reply (or was lost with its connection) and expected() deliveries
// have arrived.
func (e *env) drainTraffic(expected func() int64) { e.drainTrafficEchoes(expected, nil) }

// echoGrace is how long a drain waits for the last echoes once everything
// else has arrived.
const echoGrace = time.Second

// drainTrafficEchoes is drainTraffic that also waits for expectedEchoes()
// echoes (messages sent over HTTP reaching the sender's own connection);
// nil waits for none.
func (e *env) drainTrafficEchoes(expected, expectedEchoes func() int64) {
	e.prog.setPhase("drain")
	tr := e.tr
	deadline := time.Now().Add(e.drainFor())
	for time.Now().Before(deadline) {
		if tr.answered()+tr.lost.Load() >= tr.sent.Load() && tr.delivered.Load() >= expected() {
			if expectedEchoes == nil || tr.echoes.Load() >= expectedEchoes() {
				return
			}
			// Echoes are the server's choice, not a check: give the
			// last ones a moment, not the whole drain.
			if g := time.Now().Add(echoGrace); g.Before(deadline) {
				deadline = g
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// interruptDrain bounds the drain of an interrupted or timed-out run:
// long enough for what is in flight to arrive, short enough that Ctrl-C
// feels immediate.
const interruptDrain = 2 * time.Second

// drainFor is how long to drain: Drain, or interruptDrain once the run
// was stopped.
func (e *env) drainFor() time.Duration {
	if e.stopped() {
		return min(e.o.Drain, interruptDrain)
	}
	return e.o.Drain
}

// finishMessages builds the message report once sending and draining are
// over. expected is how many deliveries the acknowledged messages should
// have made; churn tolerates messages lost with a closed connection.
func (e *env) finishMessages(rate float64, sendFor time.Duration, expected int64, churn bool) *MessageReport {
	tr := e.tr
	m := &MessageReport{
		OfferedRate: rate, SendS: sendFor.Seconds(),
		Scheduled: tr.scheduled.Load(), Skipped: tr.skipped.Load(), Sent: tr.sent.Load(),
		Acked: tr.acked.Load(), Duplicates: tr.dups.Load(), Errors: tr.errs.snapshot(),
		Lost: tr.lost.Load(), Unsent: tr.unsent.Load(),
		ExpectedDeliveries: expected, Delivered: tr.delivered.Load(),
		Echoes: tr.echoes.Load(), Foreign: tr.foreign.Load(),
		AckLatency: tr.ack.Summary(), DeliveryLatency: tr.delivery.Summary(), SendLag: tr.lag.Summary(),
	}
	e.serverLatencies(m)
	if t := tr.trace; t != nil && t.srv != nil {
		m.Trace = t.finish(e)
	}
	m.Unacked = max(m.Sent-m.Acked-m.Duplicates-tr.errs.total()-m.Lost, 0)
	m.Missing = max(expected-m.Delivered, 0)
	m.Extra = max(m.Delivered-expected, 0)
	start := tr.firstSend.Load()
	if span := max(float64(tr.lastAck.Load()-start)/1e9, m.SendS); span > 0 {
		m.AckedPerS = float64(m.Acked) / span
	}
	if span := max(float64(tr.lastDelivery.Load()-start)/1e9, m.SendS); span > 0 {
		m.DeliveredPerS = float64(m.Delivered) / span
	}

	if n := tr.errs.total(); n > 0 {
		e.problem(group3(n) + " sends answered with an error (" + joinCounts(m.Errors) + ")")
	}
	if m.Duplicates > 0 {
		e.problem(group3(m.Duplicates) + " sends acknowledged as duplicates of an earlier cid")
	}
	if m.Unacked > 0 {
		e.problem(group3(m.Unacked) + " sends had no reply " + e.o.Drain.String() + " after sending stopped")
	}
	if !churn && m.Lost+m.Unsent > 0 {
		e.problem(group3(m.Lost+m.Unsent) + " sends lost with their connection")
	}
	if churn {
		m.ExpectedDeliveries, m.Missing, m.Extra = 0, 0, 0 // offline receivers catch up by sync: checked per seq instead
	}
	if !churn && m.Skipped > 0 {
		e.problem(group3(m.Skipped) + " scheduled sends skipped: their connection had ended")
	}
	if m.Missing > 0 {
		e.problem(group3(m.Missing) + " of " + group3(expected) + " expected deliveries did not arrive")
	}
	if m.Extra > 0 {
		e.problem(group3(m.Extra) + " deliveries more than expected")
	}
	if n := tr.disconnects.total(); n > 0 {
		e.problem(group3(n) + " connections dropped by the server (" + joinCounts(tr.disconnects.snapshot()) + ")")
	}
	if !e.stopped() && m.Scheduled < streamTotal(rate, e.o.Duration) {
		e.problem("the schedule emitted " + group3(m.Scheduled) + " of " + group3(streamTotal(rate, e.o.Duration)) + " messages")
	}
	return m
}

// joinCounts renders counts as "a×3, b×1" sorted by key.
func joinCounts(m map[string]int64) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, k+"×"+strconv.FormatInt(m[k], 10))
	}
	return strings.Join(parts, ", ")
}

// pairSession is a pair's private session as its first member saw it.
type pairSession struct {
	ID      uint64 `json:"session_id"`
	LastSeq uint64 `json:"last_seq"`
}

// openPairs finds the private session of each pair (users 2i and 2i+1)
// whose two connections are up, asking the first member. It returns one
// entry per pair, with ID 0 where the pair is unusable.
func (e *env) openPairs(conns []*wsConn) []pairSession {
	pairs := len(conns) / 2
	sess := make([]pairSession, pairs)
	var fails counts
	e.prog.set("sessions", func(b []byte) []byte { return append(b, "opening private sessions"...) })
	parallel(e.ctx, 64, pairs, func(ctx context.Context, i int) error {
		a, b := conns[2*i], conns[2*i+1]
		if a == nil || b == nil {
			return nil
		}
		err := a.callData(ctx, []byte(`{"action":"private","uid":`+strconv.Quote(UserID(2*i+1))+`}`), &sess[i])
		if err != nil {
			sess[i] = pairSession{}
			if ctx.Err() == nil {
				fails.add(err.Error(), 1)
			}
		}
		return nil
	})
	if n := fails.total(); n > 0 {
		e.problem(group3(n) + " private sessions could not be opened (" + joinCounts(fails.snapshot()) + ")")
	}
	return sess
}
