package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// --trace: where each message's time went. chatbench notes, for every
// WebSocket send, when it was due, when it was written and when its
// deliveries arrived; chatd, asked over GET /debug/msgtrace for the
// length of the schedule, notes when it decoded the send, when the group
// commit that held it ran and when it had fanned it out. Joined by
// (session, seq), which the ack and the event both carry, they split every
// delivery's latency into six consecutive parts (traceParts). The parts
// and the joined records (Options.Trace) show which part makes the tail:
// docs/performance.md, "A slow message is slow in every part at once".

// traceParts names the parts of a delivery's latency, in order. Each is
// the time between two consecutive points: due, written, decoded, commit
// start, commit end, fanned out, received.
var traceParts = [...]string{
	"send lag (client)",
	"to chatd (wire, event loop)",
	"queued for the journal",
	"group commit",
	"fan-out before it",
	"to the client (wire, reader)",
}

// TraceReport is what --trace found. Times are in microseconds.
type TraceReport struct {
	File string `json:"file"`
	// Joined is how many deliveries had both sides' records; Untraced
	// how many the server's trace did not cover (sent before it began
	// or after it ended, or dropped past its cap).
	Joined   int64       `json:"joined"`
	Untraced int64       `json:"untraced"`
	Parts    []TracePart `json:"parts"`
	Total    TracePart   `json:"total"`
}

// TracePart is one part of the delivery latency: its distribution over
// the joined deliveries, its mean over the slowest 1% of them (by total)
// and its mean over those around the median total (the middle 2%).
type TracePart struct {
	Name          string  `json:"name"`
	Latency       Latency `json:"latency"`
	SlowestMeanUS float64 `json:"slowest_1pct_mean_us"`
	MedianMeanUS  float64 `json:"median_mean_us"`
}

// traceKey identifies a message on both sides.
type traceKey struct{ session, seq uint64 }

type traceSend struct{ at, sent int64 } // run clock

type traceRecv struct {
	key traceKey
	at  int64 // run clock
}

// srvTrace is one server record, in unix nanoseconds.
type srvTrace struct{ decoded, commitStart, commitEnd, answered int64 }

// msgTrace collects the client's side of a trace. Reader goroutines add
// to it concurrently.
type msgTrace struct {
	path string

	mu    sync.Mutex // guards sends, recvs
	sends map[traceKey]traceSend
	recvs []traceRecv

	srv chan srvResult // the server's records, once its trace has ended
}

type srvResult struct {
	recs    map[traceKey]srvTrace
	dropped int64
	err     error
}

func newMsgTrace(path string) *msgTrace {
	return &msgTrace{path: path, sends: make(map[traceKey]traceSend, 1<<16), recvs: make([]traceRecv, 0, 1<<16)}
}

// acked notes a send's times once its ack gave it a seq.
func (t *msgTrace) acked(session, seq uint64, at, sent int64) {
	t.mu.Lock()
	t.sends[traceKey{session, seq}] = traceSend{at: at, sent: sent}
	t.mu.Unlock()
}

// received notes a delivery.
func (t *msgTrace) received(session, seq uint64, at int64) {
	t.mu.Lock()
	t.recvs = append(t.recvs, traceRecv{key: traceKey{session, seq}, at: at})
	t.mu.Unlock()
}

// traceSlack is how long the server's trace runs past the schedule, for
// the last sends to be answered.
const traceSlack = 2 * time.Second

// startServer asks chatd to trace for the schedule's length plus
// traceSlack, and returns once chatd's /metrics shows the trace running
// (or after traceStartWait, with a note), so that the schedule's first
// sends are traced. Called just before the schedule starts.
func (t *msgTrace) startServer(e *env) {
	t.srv = make(chan srvResult, 1)
	secs := (e.o.Duration + traceSlack).Seconds()
	go func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(e.ctx), time.Duration(secs*float64(time.Second))+30*time.Second)
		defer cancel()
		t.srv <- fetchServerTrace(ctx, e, secs)
	}()
	for deadline := time.Now().Add(traceStartWait); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if traceRunning(e) {
			return
		}
		select {
		case r := <-t.srv: // refused, or the server is not chatd
			t.srv <- r
			return
		default:
		}
	}
	e.rep.Notes = append(e.rep.Notes, "chatd's trace was not seen starting within "+traceStartWait.String()+": the first sends may be untraced")
}

// traceStartWait bounds how long startServer waits for the trace to start.
const traceStartWait = 3 * time.Second

// traceRunning reports whether the server's /metrics says a message trace
// runs.
func traceRunning(e *env) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(e.ctx), time.Second)
	defer cancel()
	body, err := e.getServer(ctx, e.api.HTTP, "/metrics")
	if err != nil {
		return false
	}
	defer body.Close()
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		if sc.Text() == "chatd_message_trace_running 1" {
			return true
		}
	}
	return false
}

func fetchServerTrace(ctx context.Context, e *env, secs float64) srvResult {
	// The API client's timeout bounds ordinary requests; this one takes
	// the whole schedule, bounded by ctx instead.
	hc := *e.api.HTTP
	hc.Timeout = 0
	body, err := e.getServer(ctx, &hc, "/debug/msgtrace?seconds="+strconv.FormatFloat(secs, 'f', 3, 64))
	if err != nil {
		return srvResult{err: fmt.Errorf("%w (a chatd that traces messages serves it to loopback clients)", err)}
	}
	defer body.Close()
	return parseServerTrace(bufio.NewScanner(body))
}

// parseServerTrace reads GET /debug/msgtrace's text: a "#" line (whose
// "N dropped" is kept) and "session seq decoded commit_start commit_end
// answered" lines.
func parseServerTrace(sc *bufio.Scanner) srvResult {
	r := srvResult{recs: make(map[traceKey]srvTrace, 1<<16)}
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			f := strings.Fields(line)
			for i := 1; i < len(f); i++ {
				if f[i] == "dropped" {
					r.dropped, _ = strconv.ParseInt(f[i-1], 10, 64)
				}
			}
			continue
		}
		f := strings.Fields(line)
		if len(f) != 6 {
			return srvResult{err: fmt.Errorf("GET /debug/msgtrace: bad line %q", line)}
		}
		var v [6]int64
		for i := range v {
			n, err := strconv.ParseInt(f[i], 10, 64)
			if err != nil {
				return srvResult{err: fmt.Errorf("GET /debug/msgtrace: bad line %q", line)}
			}
			v[i] = n
		}
		r.recs[traceKey{uint64(v[0]), uint64(v[1])}] = srvTrace{v[2], v[3], v[4], v[5]}
	}
	if err := sc.Err(); err != nil {
		return srvResult{err: err}
	}
	return r
}

// traceRow is one joined delivery, every point on the run clock.
type traceRow struct {
	key    traceKey
	points [7]int64 // due, written, decoded, commit start, commit end, fanned out, received
}

func (r *traceRow) total() int64 { return r.points[6] - r.points[0] }

// finish waits for the server's records, joins them with the client's,
// writes the joined rows to the trace file and summarises them. A failure
// becomes a note: the run's own figures stand without the trace.
func (t *msgTrace) finish(e *env) *TraceReport {
	var sr srvResult
	if e.stopped() {
		// chatd's trace runs on for the schedule's full length: not
		// worth waiting for after Ctrl-C.
		e.rep.Notes = append(e.rep.Notes, "no trace: the run was stopped early (interrupt or deadline)")
		return nil
	}
	select {
	case sr = <-t.srv:
	case <-time.After(e.o.Duration + traceSlack + 40*time.Second):
		sr.err = errors.New("chatd's trace did not come back")
	}
	if sr.err != nil {
		e.rep.Notes = append(e.rep.Notes, "no trace: "+sr.err.Error())
		return nil
	}
	epoch := e.clk.epoch.UnixNano()
	t.mu.Lock()
	defer t.mu.Unlock()
	rep := &TraceReport{File: t.path}
	rows := make([]traceRow, 0, len(t.recvs))
	for _, rv := range t.recvs {
		s, okc := t.sends[rv.key]
		v, oks := sr.recs[rv.key]
		if !okc || !oks {
			rep.Untraced++
			continue
		}
		rows = append(rows, traceRow{key: rv.key, points: [7]int64{s.at, s.sent,
			v.decoded - epoch, v.commitStart - epoch, v.commitEnd - epoch, v.answered - epoch, rv.at}})
	}
	rep.Joined = int64(len(rows))
	if sr.dropped > 0 {
		e.rep.Notes = append(e.rep.Notes, "chatd's trace dropped "+group3(sr.dropped)+" records past its cap")
	}
	if err := writeTraceRows(t.path, rows, e.clk); err != nil {
		e.rep.Notes = append(e.rep.Notes, "trace file: "+err.Error())
		rep.File = ""
	}
	if len(rows) == 0 {
		return rep
	}
	slices.SortFunc(rows, func(a, b traceRow) int { return int(a.total() - b.total()) })
	n := len(rows)
	slow := rows[n-max(n/100, 1):]
	k := max(n/50, 1)
	lo := max(n/2-k/2, 0)
	mid := rows[lo:min(lo+k, n)]
	part := func(name string, span func(r *traceRow) int64) TracePart {
		h := newHistogram()
		for i := range rows {
			h.RecordValue(clampMicros(time.Duration(span(&rows[i]))))
		}
		mean := func(rs []traceRow) float64 {
			var sum int64
			for i := range rs {
				sum += span(&rs[i])
			}
			return float64(sum) / float64(len(rs)) / 1e3
		}
		return TracePart{Name: name, Latency: Summarize(h), SlowestMeanUS: mean(slow), MedianMeanUS: mean(mid)}
	}
	for i, name := range traceParts {
		rep.Parts = append(rep.Parts, part(name, func(r *traceRow) int64 { return r.points[i+1] - r.points[i] }))
	}
	rep.Total = part("total (send → delivery)", (*traceRow).total)
	return rep
}

// writeTraceRows writes the joined rows to path (none when empty), by due
// time, one per line, in nanoseconds on the run clock, after a header line
// that names the columns and gives the run clock's zero in Unix and (on
// Linux) CLOCK_MONOTONIC nanoseconds.
func writeTraceRows(path string, rows []traceRow, clk clock) error {
	if path == "" {
		return nil
	}
	sorted := slices.Clone(rows)
	slices.SortFunc(sorted, func(a, b traceRow) int { return int(a.points[0] - b.points[0]) })
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	w.WriteString(traceHeader(clk))
	var b []byte
	for i := range sorted {
		r := &sorted[i]
		b = strconv.AppendUint(b[:0], r.key.session, 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, r.key.seq, 10)
		for _, p := range r.points {
			b = append(b, ' ')
			b = strconv.AppendInt(b, p, 10)
		}
		b = append(b, '\n')
		w.Write(b)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// traceHeader is the trace file's first line. The run clock's zero is
// given as unix_ns and, where the platform has it, monotonic_ns (the
// CLOCK_MONOTONIC reading perf uses with -k mono), so that
// internal/tools/tracejoin can place chatd's syncs and GC cycles on the
// run clock.
func traceHeader(clk clock) string {
	h := "# chatbench trace: session seq due written decoded commit_start commit_end fanned_out received (ns on the run clock; zero at unix_ns=" +
		strconv.FormatInt(clk.epoch.UnixNano(), 10)
	if clk.mono != 0 {
		h += " monotonic_ns=" + strconv.FormatInt(clk.mono, 10)
	}
	return h + ")\n"
}
